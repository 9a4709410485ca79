"""Is a generated greeting readable? One shared check for samples, reports and monitors.

A policy that learned to please a reward can still write something no reader accepts:
punctuation soup, one character over and over, the query parroted back, a sentence cut off
by the token limit. :func:`readability` tells those apart from text a person can read, with
six plain rules, each named in :data:`RULES`:

- ``chinese``: at least :data:`MIN_HAN` Chinese characters, and they make at least
  :data:`MIN_HAN_SHARE` of the words (each Chinese character, Latin word, number or other
  letter counts one): a year, a name in Latin letters or an emoji are fine; English, code,
  HTML or numbers only are not;
- ``punctuation_soup``: punctuation is at most :data:`MAX_PUNCT_SHARE` of the visible
  characters, the text does not open with a pause or end mark, and at most one clause in
  three is a lone character (``来寿快乐，，。祝，！`` fails; ``爸，生日快乐！`` passes);
- ``doubled_punctuation``: no two pause/end marks in a row (``，，``, ``。。``, ``！！``,
  ``，。``); the Chinese ellipsis ``……`` and the dash ``——`` are single marks, and quotes or
  brackets next to a mark are not doubling;
- ``repeated_char``: no character (punctuation included) :data:`MAX_RUN` + 1 = four times
  in a row (``哈哈哈哈``, ``！！！！``);
- ``query_echo``: not the query given back: once every piece of the query's Chinese (runs
  of two or more characters) is taken out of the text, fewer than :data:`MIN_HAN` Chinese
  characters or less than :data:`ECHO_SHARE` of the text's Chinese are left;
- ``unfinished``: ends with a sentence-end mark (``。！？…~`` and ASCII ``!?``), optionally
  followed by closing quotes or brackets and emoji, or consists of four-character phrases
  only (``百年好合，永结同心``): a greeting cut off midway ends in a comma or in the middle
  of a phrase.

The rules read characters only (no tokenizer, no model, no dictionary): ~25 µs
per text, cheap enough to run over every completion a GRPO step scores.

>>> readable("妈妈，生日快乐！愿您身体健康，天天开心。")
True
>>> readability("来寿快乐，，。祝，！").failed
('punctuation_soup', 'doubled_punctuation')
>>> readable("闺蜜生日祝福语", query="闺蜜生日祝福语 幽默一点")
False
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: The rule names, in the order they are checked and reported.
RULES: tuple[str, ...] = ("chinese", "punctuation_soup", "doubled_punctuation", "repeated_char",
                          "query_echo", "unfinished")

MIN_HAN = 4
MIN_HAN_SHARE = 0.6
MAX_PUNCT_SHARE = 0.3
MAX_LONE_CLAUSE_SHARE = 1 / 3
MAX_RUN = 3
ECHO_SHARE = 0.5

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
#: Pause and end marks: two of these in a row is doubling.
_MARKS = "，。！？、；：,.!?;:"
_DOUBLED = re.compile(f"[{re.escape(_MARKS)}]{{2,}}")
#: Everything counted as punctuation for the share (marks, ellipsis, dashes, quotes, brackets).
_PUNCT = re.compile(r"[，。！？、；：,.!?;:…—~～·“”‘’\"'（）()《》〈〉【】\[\]「」『』\-]")
_WORD = re.compile(r"[A-Za-z]+|[0-9]+")
_CLAUSE_SPLIT = re.compile(r"[，。！？、；：,.!?;:…~～\s]+")
_FOUR_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{4}")
_RUN = re.compile(rf"(\S)\1{{{MAX_RUN},}}")
#: A finished text ends with one of these, then only closers, emoji or whitespace.
_END_MARKS = "。！？!?…~～"
_TRAILING = re.compile(
    r"[\s”’\"'）)》〉】」』\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200d]*$")


@dataclass(frozen=True)
class Readability:
    """The verdict on one text: the rules it broke (empty when readable)."""

    text: str
    failed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failed


def _chinese(text: str, han: int) -> bool:
    # one unit per Latin word or number, and per other letter (Han, kana, hangul…)
    units = len(_WORD.findall(text)) + sum(ch.isalnum() and not ch.isascii() for ch in text)
    return han >= MIN_HAN and han >= MIN_HAN_SHARE * units


def _soup(visible: str) -> bool:
    if not visible:
        return True
    if len(_PUNCT.findall(visible)) > MAX_PUNCT_SHARE * len(visible):
        return True
    if visible[0] in _MARKS:
        return True
    clauses = [c for c in _CLAUSE_SPLIT.split(visible) if any(ch.isalnum() for ch in c)]
    lone = sum(len(c) == 1 for c in clauses)
    return not clauses or (len(clauses) >= 3 and lone > MAX_LONE_CLAUSE_SHARE * len(clauses))


def _echo(text: str, query: str) -> bool:
    pieces = [p for p in _HAN_RUN.findall(query) if len(p) >= 2]
    if not pieces:
        return False
    text_han = "".join(_HAN_RUN.findall(text))
    rest = text_han
    for piece in sorted(pieces, key=len, reverse=True):
        rest = rest.replace(piece, "")
    return len(rest) < MIN_HAN or len(rest) < ECHO_SHARE * len(text_han)


def _finished(text: str) -> bool:
    body = _TRAILING.sub("", text)
    if not body:
        return False
    if body[-1] in _END_MARKS:
        return True
    clauses = [c for c in _CLAUSE_SPLIT.split(body) if c]
    return bool(clauses) and all(_FOUR_CHAR.fullmatch(c) for c in clauses)


def readability(text: str, query: str | None = None) -> Readability:
    """Check ``text`` against every rule (see module docstring); ``query`` enables the echo
    rule. Whitespace inside the text is ignored except where it separates clauses."""
    if not isinstance(text, str):
        raise TypeError(f"readability: text must be a str, got {type(text).__name__}")
    visible = "".join(text.split())
    han = len(_HAN.findall(visible))
    failed = []
    if not _chinese(visible, han):
        failed.append("chinese")
    if _soup(visible):
        failed.append("punctuation_soup")
    if _DOUBLED.search(visible):
        failed.append("doubled_punctuation")
    if _RUN.search(visible):
        failed.append("repeated_char")
    if query and _echo(visible, query):
        failed.append("query_echo")
    if not _finished(text.strip()):
        failed.append("unfinished")
    return Readability(text=text, failed=tuple(failed))


def readable(text: str, query: str | None = None) -> bool:
    """True when ``text`` breaks none of the rules (see :func:`readability`)."""
    return readability(text, query).ok


def readable_share(texts: Sequence[str], queries: Sequence[str] | None = None) -> float:
    """The fraction of ``texts`` that are readable (each against its query when given).

    >>> readable_share(["新年快乐，万事如意！", "，，，，"])
    0.5
    """
    if queries is not None and len(queries) != len(texts):
        raise ValueError(f"readable_share: {len(texts)} texts but {len(queries)} queries")
    if not texts:
        raise ValueError("readable_share: no texts")
    qs = queries if queries is not None else [None] * len(texts)
    return sum(readable(t, q) for t, q in zip(texts, qs, strict=True)) / len(texts)
