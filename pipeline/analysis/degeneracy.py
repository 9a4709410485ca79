"""Is this text a greeting at all? Degeneracy signals and the readability factor.

A policy optimised against a judge finds the texts a feature judge never saw: punctuation
soup, one character or phrase over and over, the query echoed back, English or code,
emoji, a greeting cut off or written twice, characters in random order, a refusal or the
assistant's talk about the greeting. Each signal below is a number in [0, 1] (0 = no sign
of it, 1 = certainly that) computed from the text alone.

Six signals are the rules of the shared readability check
(:func:`zhufu.pipeline.evaluation.readable.readability`, what reports and the GRPO monitor
count as readable), so the judge never likes what the monitor calls unreadable:

- ``no_chinese`` (rule ``chinese``) — too little Chinese: empty, punctuation, English, code,
  numbers, emoji, HTML;
- ``punct_soup`` (``punctuation_soup``) — punctuation everywhere, lone characters between;
- ``doubled_punct`` (``doubled_punctuation``) — two pause or end marks in a row;
- ``char_run`` (``repeated_char``) — one character four or more times in a row;
- ``query_echo`` (``query_echo``) — the answer is the query given back;
- ``cut_off`` (``unfinished``) — the text stops mid-sentence.

Five more catch what those rules let through:

- ``dangling`` — the text ends on a pause mark or on a word that cannot end a sentence
  (``新岗位上，`` passes the four-character-phrase exception of ``unfinished``);

- ``self_repeat`` — the text repeats itself: a short piece over and over, or the whole
  greeting written twice;
- ``stutter`` — a phrase of three or more characters written again right after itself inside
  one clause, three times or cut off in a third copy (``再展宏图再展宏图再展``,
  ``新年好新年好新年好``), or twice when it is no known reduplication: the distributive
  ``一个城市一个城市地`` (a phrase opening on 一) and the free-choice ``想睡多久睡多久`` (a
  question word inside) pass; or, past the opening clause, a run of one to three clauses of
  four or more characters in all written again right after itself (``愿您在心里。愿您在心里。``,
  ``愿您身体硬朗，天天开心。愿您身体硬朗，天天开心。``: never in the paper's 12,620 chosen and
  rejected greetings or its 4,000 SFT answers; a doubled opening, ``新年快乐，新年快乐，…``, is a
  chant and passes); or a clause of one character that echoes the last character of a
  longer clause before it (``笑口常开，开，``, ``福寿绵长，长。``: GRPO wrote these, the judge
  scored them 3.5-3.8; never in the paper's chosen or rejected greetings, the project's good
  ones or 6,000 composed ones);
- ``scrambled`` — the characters do not form words: few of them fall inside dictionary
  words and few neighbouring pairs start one (jieba's dictionary, not any corpus of
  greetings);
- ``refusal`` — a refusal or the assistant speaking about itself or the task instead of
  writing the greeting (``抱歉，我无法…``, ``作为AI…``, ``以下是…``, ``（此处填写…）``).

:func:`readability` turns them into one factor r in [0, 1]: the product of ``1 − signal``.
The scorer maps every dimension score s to ``1 + (s − 1) × r``: text that is not a greeting
scores 1 on every dimension, whatever its words, and the judge's verdict is "bad" when r is
below :data:`READABLE_AT`. The factor has no trainable part, so no training on labelled
data can teach the judge to like degenerate text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zhufu.pipeline.analysis.text import HAN, HAN_RUN, _jieba, han_count, tokens
from zhufu.pipeline.evaluation.readable import readability as readable_check

#: Verdict "bad" below this readability (the ``degenerate`` veto).
READABLE_AT = 0.5
#: readable() rule → the judge's signal name.
RULE_SIGNALS = {"chinese": "no_chinese", "punctuation_soup": "punct_soup",
                "doubled_punctuation": "doubled_punct", "repeated_char": "char_run",
                "query_echo": "query_echo", "unfinished": "cut_off"}
SIGNALS = (*RULE_SIGNALS.values(), "dangling", "self_repeat", "stutter", "scrambled",
           "refusal")
#: Last characters that leave a sentence hanging (a pause mark, or a one-character function
#: word standing alone at the end).
_DANGLING_END = ("，", ",", "、", "：", ":", "；", "的", "和", "与", "及", "在", "把", "被", "让",
                 "愿", "祝", "是", "像", "如", "给", "为", "从", "着", "而", "但", "也", "都", "就",
                 "能", "会", "更", "很", "最", "要", "将", "得", "地", "向", "对", "于", "以", "我",
                 "您", "你", "们")
_TRAILING = re.compile(r"[\s\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200d]+$")
#: A piece of 3–8 Chinese characters written again right after itself (no mark between).
_STUTTER = re.compile(r"([\u4e00-\u9fff]{3,8})\1")
#: The longest run of clauses whose immediate repeat is a stutter.
_CLAUSE_RUN_MAX = 3
#: Question words of the free-choice reduplication (想吃什么吃什么, 想睡多久睡多久).
_FREE_CHOICE = ("什么", "多久", "多少", "哪", "谁", "怎么", "几")
_ANY_PUNCT = re.compile(r"[，,。.！!？?、；;：:…~～\s]")
_REFUSAL = re.compile(
    r"(抱歉|对不起|不好意思|很遗憾).{0,12}(无法|不能|不方便|暂时)|作为(一个|一名)?(AI|ai|人工智能|语言模型|助手)"
    r"|我(是|只是)(一个)?(AI|人工智能|语言模型)|^我(无法|不能|不会)|请(问|换)一?种?说法|请问您需要"
    r"|能(再|否)?(具体|详细)(一点|描述|说明)|(以下|下面)(是|为)|如下[：:]|供您?参考|(此处|这里)填写"
    r"|您可以根据|可根据实际|^(标题|正文|输出|回答|答案)[：:]|^祝福语[：:（(]|符合您?的要求"
    r"|(为您|为你|给您|给你)(写|准备|创作|生成|送上)(了)?(一|几|以下|如下|这)|请只生成"
    r"|^(好的|当然)[，,！!。]?我(来|这就)")


@dataclass(frozen=True)
class Degeneracy:
    """The signals (each in [0, 1]) and the readability factor of one text."""

    signals: dict[str, float]
    readability: float

    @property
    def worst(self) -> str:
        return max(self.signals, key=lambda k: self.signals[k])


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def _self_repeat(han: str) -> float:
    """How much of the text is a repetition of itself: the best of (a) a piece of 1–8
    characters repeated to cover the text, (b) the text written twice or more."""
    n = len(han)
    if n < 4:
        return 0.0
    for k in (2, 3):  # the whole text k times (allowing a small tail)
        part = n // k
        if part >= 4 and han[:part] * k == han[:part * k] and n - part * k <= 2:
            return 1.0
    best = 0.0
    for size in range(1, min(8, n // 3) + 1):  # a short unit repeated ≥ 3 times
        counts: dict[str, int] = {}
        for i in range(n - size + 1):
            counts[han[i:i + size]] = counts.get(han[i:i + size], 0) + 1
        c = max(counts.values())
        if c >= 3:
            best = max(best, c * size / n)
    return _clip((best - 0.45) / 0.3)


def _clauses_repeated(han_runs: list[str]) -> bool:
    """Whether, past the opening clause, one to three clauses (four or more characters in all)
    come again right after themselves, in the same order."""
    n = len(han_runs)
    for k in range(1, _CLAUSE_RUN_MAX + 1):
        for i in range(1, n - 2 * k + 1):
            block = han_runs[i:i + k]
            if block == han_runs[i + k:i + 2 * k] and sum(map(len, block)) >= 4:
                return True
    return False


def _echoed_last_char(han_runs: list[str]) -> bool:
    """Whether a clause of one character repeats the last character of a longer clause just
    before it (``笑口常开，开，``; the interjection ``好，好，好`` passes)."""
    return any(len(run) == 1 and len(prev) > 1 and prev.endswith(run)
               for prev, run in zip(han_runs, han_runs[1:], strict=False))


def _stutter(han_runs: list[str]) -> float:
    """1 when a clause (a run of Chinese characters) writes a phrase of three or more
    characters again right after itself, unless it is a known reduplication written once more
    (see the module docstring), when one to three clauses are written again right after
    themselves past the opening (``新年快乐，新年快乐，…`` is a chant), or when a clause of one
    character echoes the end of the one before, else 0."""
    if _clauses_repeated(han_runs) or _echoed_last_char(han_runs):
        return 1.0
    for run in han_runs:
        for m in _STUTTER.finditer(run):
            unit, end = m.group(1), m.end()
            after = run[end:end + len(unit)]
            third = next((i for i, (a, b) in enumerate(zip(after, unit, strict=False)) if a != b),
                         len(after))
            if third >= min(2, len(unit)):
                return 1.0  # a third copy, whole or cut off after two or more characters
            if not unit.startswith("一") and not any(w in unit for w in _FREE_CHOICE):
                return 1.0
    return 0.0


def _scrambled(text: str, han: str) -> float:
    unpunctuated = len(han) >= 10 and not _ANY_PUNCT.search(text.strip())
    if len(han) < (6 if unpunctuated else 10):
        return 0.0  # short classical lines (心之所向，皆如所愿) use one-character words
    freq = _jieba().dt.FREQ
    in_words = sum(len(w) for w in tokens(text) if len(w) >= 2 and han_count(w) == len(w)
                   and freq.get(w, 0) > 0)
    pairs = [han[i:i + 2] for i in range(len(han) - 1)]
    z = 0.5 * in_words / len(han) + 0.5 * sum(p in freq for p in pairs) / len(pairs)
    # a greeting of ten characters or more always has punctuation: a run without any is
    # held to a stricter standard
    return _clip(((0.42 if unpunctuated else 0.31) - z) / 0.06)


def _dangling(text: str) -> float:
    body = _TRAILING.sub("", text)
    if not body.endswith(_DANGLING_END):
        return 0.0
    # (…皆如所愿 ends on the word 所愿, not on a dangling 愿)
    return 1.0 if not HAN.match(body[-1]) or len(tokens(body)[-1]) == 1 else 0.0


def signals(query: str, text: str) -> dict[str, float]:
    """Every degeneracy signal of ``text`` answering ``query`` (see the module docstring)."""
    failed = set(readable_check(text, query or None).failed)
    out = {name: float(rule in failed) for rule, name in RULE_SIGNALS.items()}
    han = "".join(HAN.findall(text))
    out["dangling"] = _dangling(text) if han else 0.0
    out["self_repeat"] = _self_repeat(han)
    out["stutter"] = _stutter(HAN_RUN.findall(text)) if han else 0.0
    out["scrambled"] = _scrambled(text, han) if han else 0.0
    out["refusal"] = 1.0 if _REFUSAL.search(text) else 0.0
    return out


def readability(query: str, text: str) -> Degeneracy:
    """The signals and r = Π (1 − signal) (1 = a text a reader can take as a greeting)."""
    sig = signals(query, text)
    r = 1.0
    for v in sig.values():
        r *= 1.0 - v
    return Degeneracy(sig, r)


__all__ = ["READABLE_AT", "RULE_SIGNALS", "SIGNALS", "Degeneracy", "readability", "signals"]
