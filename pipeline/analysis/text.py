"""Chinese text helpers for the analyser: jieba tokens, clauses, character counts, emoji.

jieba loads its dictionary once per process (about a second); :func:`tokens` and
:func:`pos_tokens` cache their results for repeated greetings.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache

HAN = re.compile(r"[\u4e00-\u9fff]")
HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")
CLAUSE_SPLIT = re.compile(r"[，,。！!？?；;：:、\n…~～]+")
SENTENCE_END = "。！？!?…~～"
SENTENCE_SPLIT = re.compile(f"[{SENTENCE_END}]")
EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200d\u2190-\u21ff\u2300-\u23ff]"
)
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


@lru_cache(maxsize=1)
def _jieba():  # noqa: ANN202 - the module object
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=8192)
def tokens(text: str) -> tuple[str, ...]:
    """jieba's precise-mode words of ``text`` (whitespace dropped)."""
    return tuple(w for w in _jieba().lcut(text) if w.strip())


@lru_cache(maxsize=8192)
def pos_tokens(text: str) -> tuple[tuple[str, str], ...]:
    """(word, part-of-speech flag) pairs; jieba tags idioms ``i`` and set phrases ``l``."""
    import jieba.posseg

    _jieba()
    return tuple((p.word, p.flag) for p in jieba.posseg.lcut(text) if p.word.strip())


FULLWIDTH_ALNUM = re.compile(r"[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")


def is_dictionary_idiom(word: str) -> bool:
    """A four-character word jieba's dictionary knows: mostly 成语 and set phrases
    (jieba's part-of-speech tags for idioms are too unreliable to use)."""
    return len(word) == 4 and han_count(word) == 4 and _jieba().dt.FREQ.get(word, 0) > 0


def normalise(text: str) -> str:
    """Trim, and turn full-width digits/letters into ASCII; Chinese punctuation is kept as is
    (NFKC would turn ，！？ into ASCII and hide mixed punctuation)."""
    text = FULLWIDTH_ALNUM.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), text)
    return text.strip()


def han_count(text: str) -> int:
    """Number of Chinese characters (the length a reader of a greeting perceives)."""
    return len(HAN.findall(text))


def char_length(text: str) -> int:
    """Visible characters excluding whitespace: what "length" means in every report."""
    return len("".join(text.split()))


def clauses(text: str) -> list[str]:
    """Pieces between punctuation marks, empty ones dropped."""
    return [c.strip() for c in CLAUSE_SPLIT.split(text) if c.strip()]


def emojis(text: str) -> list[str]:
    return [e for e in EMOJI.findall(text) if e not in "\ufe0f\u200d"]


def char_ngrams(text: str, n: int) -> list[str]:
    han = "".join(HAN.findall(text))
    return [han[i : i + n] for i in range(len(han) - n + 1)]


#: A closing sentence shorter than this (Chinese characters) is too short to call a line.
MIN_LINE_CHARS = 4


def closing_line(text: str) -> str:
    """The Chinese characters of the last sentence that has at least four of them, else "".

    >>> closing_line("宝贝，生日快乐！愿你永远有人陪，永远有梦追。")
    '愿你永远有人陪永远有梦追'
    >>> closing_line("生日快乐！")
    '生日快乐'
    >>> closing_line("好！")
    ''
    """
    for sentence in reversed(SENTENCE_SPLIT.split(text)):
        han = "".join(HAN.findall(sentence))
        if len(han) >= MIN_LINE_CHARS:
            return han
    return ""
