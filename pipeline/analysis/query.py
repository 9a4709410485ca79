"""What a query asks for: occasion(s), recipient, honorific register, length and tone.

Queries are short search-style requests (``祝儿子三十六生日最好句子``); everything is
implicit, so this is keyword matching over the lexicons plus a few patterns for exact
character counts (``八个字``) and ages (``35岁``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from zhufu.pipeline.analysis.lexicon import load_lexicon

CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
             "九": 9, "十": 10}
EXACT_CHARS = re.compile(r"([0-9]{1,2}|[一二两三四五六七八九十]{1,3})\s*个?\s*字")
AGE = re.compile(r"([0-9]{1,3}|[一二三四五六七八九十百]{1,4})\s*(岁|周岁|大寿|寿|周年|年)")
SENDER_AFTER = ("对", "给", "送", "写给", "致")
RECIPIENT_BEFORE = ("给", "送给", "祝", "对", "致", "送", "祝福", "献给")


def cn_number(text: str) -> int | None:
    """``36``, ``三十六``, ``八`` → int; None when not a number."""
    if text.isdigit():
        return int(text)
    if not text or any(ch not in CN_DIGITS and ch != "百" for ch in text):
        return None
    total, current = 0, 0
    for ch in text:
        if ch == "百":
            total += (current or 1) * 100
            current = 0
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        else:
            current = CN_DIGITS[ch]
    return total + current


@dataclass(frozen=True)
class QueryIntent:
    query: str
    occasions: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    register: str | None = None
    length: str = "default"  # default | short | long | idiom | exact
    exact_chars: int | None = None
    tones: tuple[str, ...] = ()
    numbers: tuple[int, ...] = ()
    recipient_words: tuple[str, ...] = field(default=())


def _recipient_score(query: str, word: str) -> int:
    """+1 when the word reads as the addressee, -1 as the sender, 0 unclear."""
    i = query.find(word)
    before = query[max(0, i - 3) : i]
    after = query[i + len(word) : i + len(word) + 2]
    if any(before.endswith(m) for m in RECIPIENT_BEFORE):
        return 1
    if any(after.startswith(m) for m in SENDER_AFTER):
        return -1
    return 0


@lru_cache(maxsize=4096)
def parse_query(query: str) -> QueryIntent:
    """Read occasion, recipient, register, length request, tone and numbers from a query."""
    lex = load_lexicon()
    q = query.strip()
    occasions = tuple(k for k, o in lex.occasions.items() if any(w in q for w in o.query))
    found: list[tuple[int, int, str, str]] = []  # (score, -position, key, word)
    for key, rec in lex.recipients.items():
        for w in rec.query:
            if w in q:
                found.append((_recipient_score(q, w), q.find(w), key, w))
                break
    found.sort(key=lambda t: (-t[0], t[1]))
    senders = {k for s, _, k, _ in found if s < 0}
    recipients = tuple(dict.fromkeys(k for s, _, k, _ in found if s >= 0 and k not in senders
                                     or s > 0))
    if not recipients and found:
        recipients = tuple(dict.fromkeys(k for *_, k, _ in found))
    registers = {lex.recipients[k].register for k in recipients[:1]}
    register = registers.pop() if len(registers) == 1 else None
    exact = None
    m = EXACT_CHARS.search(q)
    if m:
        exact = cn_number(m.group(1))
    length = "default"
    if exact:
        length = "exact"
    elif any(w in q for w in lex.length_requests["idiom"]):
        length = "idiom"
    elif any(w in q for w in lex.length_requests["long"]):
        length = "long"
    elif any(w in q for w in lex.length_requests["short"]):
        length = "short"
    tones = tuple(k for k, words in lex.tone_requests.items() if any(w in q for w in words))
    numbers = tuple(n for g, _ in AGE.findall(q) if (n := cn_number(g)) is not None and n > 0)
    words = tuple(w for *_, k, w in found if k in recipients)
    return QueryIntent(query=q, occasions=occasions, recipients=recipients, register=register,
                       length=length, exact_chars=exact, tones=tones, numbers=numbers,
                       recipient_words=words)
