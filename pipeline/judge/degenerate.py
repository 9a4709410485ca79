"""Degenerate answers made from a good greeting: what a policy finds when it hacks a reward.

Each kind in :data:`KINDS` turns ``(query, good greeting)`` into text that is *not* a
greeting, whatever a shallow scorer thinks of it: punctuation only, punctuation soup with a
few wish characters, one character or phrase repeated, a phrase stuttered inside a greeting,
the query echoed, non-Chinese text
(English, code, HTML, numbers, emoji), a greeting cut off midway or written twice, its
characters shuffled, a refusal or assistant meta-text.

It is used to generate part of the degenerate test set (``testsets/degenerate.jsonl``, from
the project's own good greetings) and the extra negatives of reward-model training
(``degenerate_negatives`` in the reward-model config, from the training pairs' own chosen
texts, and half the ``written_twice`` ones from their rejected texts). Everything is
seeded: the same arguments give the same text.

>>> import random
>>> make("written_twice", "生日祝福语", "生日快乐！", random.Random(0))
'生日快乐！生日快乐！'
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

Maker = Callable[[str, str, random.Random], str]

PUNCT = "，。！？、；：…～"
_HAN = re.compile(r"[\u4e00-\u9fff]")
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]{3,}")
_SENTENCE_END = "。！？!?…~～"
_ENGLISH = ("Happy birthday", "Best wishes", "Congratulations", "Good luck", "Love you",
            "Happy New Year", "All the best", "Cheers", "Wish you happiness", "Have fun")
_CODE = ("print({s!r})", "return {s!r};", "console.log({s!r});", "{{\"text\": {s!r}}}",
         "def wish():\n    return {s!r}", "<?php echo {s!r}; ?>")
_HTML = ("<p>{s}</p>", "<div class=\"card\">{s}</div>", "<span>{s}</span>", "<br>{s}<br>",
         "<h1>{s}</h1>")
_EMOJI = ("🎂", "🎉", "🎁", "🥳", "🌹", "💐", "❤️", "✨", "🧧", "🏮", "👍", "😊", "🌕", "💍")
_REFUSALS = ("抱歉，我无法完成这个请求。", "对不起，我不能为您生成这类内容。",
             "作为一个AI语言模型，我没有个人情感，无法替您表达祝福。",
             "很抱歉，这个问题我暂时无法回答，请换一种说法。",
             "我不太明白您的意思，能再具体描述一下吗？")
_META = ("好的，以下是为您写的{q}：", "当然可以！下面是一条{q}。", "以下是几条{q}，供您参考：",
         "这是一条{q}，您可以根据实际情况修改。", "{q}：（此处填写祝福内容）",
         "好的，我来为您写一条{q}。", "根据您的要求，{q}如下：")


def _han(text: str) -> list[str]:
    return _HAN.findall(text)


def punctuation(query: str, text: str, rng: random.Random) -> str:
    """Punctuation marks only (1–12 of them)."""
    mark = rng.choice(PUNCT)
    if rng.random() < 0.5:
        return mark * rng.randint(1, 12)
    return "".join(rng.choice(PUNCT) for _ in range(rng.randint(2, 12)))


def punct_soup(query: str, text: str, rng: random.Random) -> str:
    """A few of the greeting's characters drowned in runs of punctuation."""
    chars = _han(text) or list("祝福快乐")
    out = []
    for _ in range(rng.randint(3, 7)):
        out.append("".join(rng.choice(chars) for _ in range(rng.randint(1, 2))))
        out.append("".join(rng.choice(PUNCT) for _ in range(rng.randint(2, 4))))
    if rng.random() < 0.3:
        out.insert(rng.randrange(len(out)), "\n" * rng.randint(1, 3))
    return "".join(out)


def repeated_chars(query: str, text: str, rng: random.Random) -> str:
    """One of the greeting's characters many times (optionally after a short head)."""
    chars = _han(text) or ["好"]
    head = "".join(chars[: rng.randint(0, 3)])
    return head + rng.choice(chars) * rng.randint(6, 16)


def repeated_phrase(query: str, text: str, rng: random.Random) -> str:
    """A two-to-four-character piece of the greeting repeated 3–8 times."""
    han = "".join(_han(text)) or "祝福快乐"
    n = min(len(han), rng.randint(2, 4))
    start = rng.randrange(len(han) - n + 1)
    piece = han[start:start + n]
    sep = rng.choice(("", "", "，", "！", " "))
    return sep.join([piece] * rng.randint(3, 8)) + (sep if sep.strip() else "")


def stutter(query: str, text: str, rng: random.Random) -> str:
    """The greeting with one of its phrases (3–6 characters) written again right after itself
    inside its clause, a third copy whole or cut off (再展宏图再展宏图再展): the loop a
    sampler falls into, in an otherwise fluent text."""
    if not _HAN_RUN.search(text):
        text = "祝你生日快乐，天天开心。"
    run = rng.choice(list(_HAN_RUN.finditer(text)))
    k = rng.randint(3, min(6, len(run.group())))
    at = run.start() + rng.randrange(len(run.group()) - k + 1)
    unit = text[at:at + k]
    again = unit + (unit if rng.random() < 0.3 else unit[:rng.randint(2, k - 1)])
    return text[:at + k] + again + text[at + k:]


def query_echo(query: str, text: str, rng: random.Random) -> str:
    """The query itself, bare or lightly dressed."""
    form = rng.randrange(4)
    if form == 0:
        return query
    if form == 1:
        return query.replace(" ", "，") + "。"
    if form == 2:
        return f"{query}：{query}"
    return f"请只生成一条祝福语：{query}"


def non_chinese(query: str, text: str, rng: random.Random) -> str:
    """English, code, HTML, digits or emoji with no Chinese in them."""
    form = rng.randrange(5)
    phrase = rng.choice(_ENGLISH)
    if form == 0:
        return phrase + rng.choice(("!", ".", "!!", " :)", ""))
    if form == 1:
        return rng.choice(_CODE).format(s=phrase)
    if form == 2:
        return rng.choice(_HTML).format(s=phrase if rng.random() < 0.5 else "")
    if form == 3:
        return " ".join(str(rng.choice((520, 1314, 666, 888, 2025, 99, 8))) for _ in
                        range(rng.randint(1, 5)))
    return "".join(rng.choice(_EMOJI) for _ in range(rng.randint(1, 8)))


def cut_off(query: str, text: str, rng: random.Random) -> str:
    """The greeting cut between 30 % and 75 % of its length, not at a sentence end."""
    stripped = text.strip()
    if len(stripped) < 6:
        return stripped[:-1] or "祝"
    lo, hi = max(2, len(stripped) * 3 // 10), max(3, len(stripped) * 3 // 4)
    cut = stripped[: rng.randint(lo, hi)].rstrip(_SENTENCE_END)
    if rng.random() < 0.4 and not cut.endswith("，"):
        cut += "，"
    return cut


def written_twice(query: str, text: str, rng: random.Random) -> str:
    """The whole greeting twice (or three times), back to back or on new lines."""
    sep = rng.choice(("", "", "\n", " "))
    return sep.join([text.strip()] * (3 if rng.random() < 0.2 else 2))


def shuffled(query: str, text: str, rng: random.Random) -> str:
    """The greeting's characters (punctuation dropped) in random order."""
    chars = _han(text) or list(text)
    for _ in range(5):
        rng.shuffle(chars)
        if "".join(chars) != "".join(_han(text)):
            break
    return "".join(chars)


def refusal_meta(query: str, text: str, rng: random.Random) -> str:
    """A refusal, or assistant talk about the greeting instead of the greeting."""
    if rng.random() < 0.4:
        return rng.choice(_REFUSALS)
    topic = re.sub(r"\s+", "", query) or "祝福语"
    if "祝福" not in topic:
        topic += "祝福语"
    return rng.choice(_META).format(q=topic)


#: kind → maker. Names match the ``kind`` field of ``testsets/degenerate.jsonl``.
KINDS: dict[str, Maker] = {
    "punctuation": punctuation,
    "punct_soup": punct_soup,
    "repeated_chars": repeated_chars,
    "repeated_phrase": repeated_phrase,
    "query_echo": query_echo,
    "non_chinese": non_chinese,
    "cut_off": cut_off,
    "written_twice": written_twice,
    "shuffled": shuffled,
    "refusal_meta": refusal_meta,
    "stutter": stutter,
}


def make(kind: str, query: str, text: str, rng: random.Random) -> str:
    """The ``kind`` corruption of ``text`` (a good greeting for ``query``)."""
    try:
        maker = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown degenerate kind {kind!r} (known: {sorted(KINDS)})") from None
    return maker(query, text, rng)


def degenerate_pairs(queries: Sequence[str], chosen: Sequence[str], count: int, seed: int,
                     kinds: Sequence[str] | None = None) -> list[tuple[str, str, str, str]]:
    """``count`` (query, chosen, degenerate text, kind) rows: chosen texts drawn with
    replacement, kinds in turn, so every kind is equally represented.

    >>> rows = degenerate_pairs(["生日祝福语"], ["生日快乐，愿你天天开心！"], 3, seed=1)
    >>> [k for *_, k in rows]
    ['punctuation', 'punct_soup', 'repeated_chars']
    """
    if len(queries) != len(chosen):
        raise ValueError(f"queries and chosen differ in length: {len(queries)} vs {len(chosen)}")
    if not chosen:
        return []
    names = list(kinds or KINDS)
    rng = random.Random(seed)
    out = []
    for i in range(count):
        j = rng.randrange(len(chosen))
        kind = names[i % len(names)]
        text = make(kind, queries[j], chosen[j], rng)
        out.append((queries[j], chosen[j], text, kind))
    return out
