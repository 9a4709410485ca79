"""A lenient reader for the JSON object an LLM was asked to answer with.

Models wrap JSON in Markdown fences, put prose around it, leave trailing commas, or write a
Python dict (single quotes, ``True``/``None``). :func:`parse_json_output` tries, in order:
fenced blocks, the whole text, then every balanced ``{...}`` span found in the text; each
candidate as strict JSON, then with trailing commas and ``//`` comments removed and smart
quotes straightened, then as a Python literal. The first candidate that yields a ``dict``
wins. Anything else returns ``None``: it never raises, so one bad answer cannot break a batch.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

#: Longest text we try to read (a runaway generation is garbage, not a verdict).
MAX_CHARS = 100_000

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON|javascript|js|python|py)?[ \t]*\r?\n?(.*?)```",
                    re.DOTALL)
_SMART = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


def parse_json_output(text: Any) -> dict[str, Any] | None:
    """The JSON object in ``text``, or None when there is none.

    >>> parse_json_output('{"score": 4}')
    {'score': 4}
    >>> parse_json_output('Sure! ```json\\n{"score": 4, "reasons": ["warm",],}\\n``` Enjoy.')
    {'score': 4, 'reasons': ['warm']}
    >>> parse_json_output("Verdict: {'label': 1, 'ok': True, 'note': None}")
    {'label': 1, 'ok': True, 'note': None}
    >>> parse_json_output("I cannot rate this greeting.") is None
    True
    >>> parse_json_output("[1, 2, 3]") is None
    True
    """
    try:
        if not isinstance(text, str):
            return None
        text = text.strip().lstrip("\ufeff")
        if not text or len(text) > MAX_CHARS:
            return None
        seen: set[str] = set()
        for candidate in _candidates(text):
            if candidate in seen:
                continue
            seen.add(candidate)
            value = _load(candidate)
            if isinstance(value, dict):
                return value
    except Exception:  # noqa: BLE001 - the contract is "None on garbage", whatever it is
        return None
    return None


def _candidates(text: str) -> Iterator[str]:
    for match in _FENCE.finditer(text):
        yield match.group(1).strip()
    yield text
    yield from _brace_spans(text)


def _brace_spans(text: str, limit: int = 20, starts: int = 20) -> Iterator[str]:
    """Balanced ``{...}`` spans, outermost first, skipping braces inside quoted strings.

    At most ``starts`` opening braces are tried (each scan is linear), so garbage full of
    braces costs milliseconds, not seconds.
    """
    found = tried = 0
    start = text.find("{")
    while start != -1 and found < limit and tried < starts:
        tried += 1
        end = _matching_brace(text, start)
        if end is not None:
            found += 1
            yield text[start:end + 1]
        start = text.find("{", start + 1)


def _matching_brace(text: str, start: int) -> int | None:
    depth = 0
    quote: str | None = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            # an apostrophe inside a word (it's) does not open a string
            if ch == '"' or not (i > 0 and text[i - 1].isalnum()):
                quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _load(candidate: str) -> Any:
    for attempt in (candidate, _repair(candidate), _repair(candidate.translate(_SMART))):
        try:
            return json.loads(attempt)
        except ValueError:
            pass
    for attempt in (candidate, _pythonize(candidate)):
        try:
            return ast.literal_eval(attempt)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return None


def _scan(text: str) -> Iterator[tuple[str, bool]]:
    """Split ``text`` into (chunk, is_string_literal) pieces, strings quoted either way."""
    i = 0
    n = len(text)
    plain_start = 0
    while i < n:
        ch = text[i]
        if ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            if j >= n:  # unterminated: treat the rest as plain text
                break
            if plain_start < i:
                yield text[plain_start:i], False
            yield text[i:j + 1], True
            i = j + 1
            plain_start = i
        else:
            i += 1
    if plain_start < n:
        yield text[plain_start:], False


_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_LINE_COMMENT = re.compile(r"//[^\n]*")


def _repair(text: str) -> str:
    """Drop trailing commas and ``//`` comments outside string literals."""
    out = []
    for chunk, is_string in _scan(text):
        if not is_string:
            chunk = _TRAILING_COMMA.sub(r"\1", _LINE_COMMENT.sub("", chunk))
        out.append(chunk)
    return "".join(out)


_JSON_WORDS = {"true": "True", "false": "False", "null": "None"}
_WORD = re.compile(r"\b(true|false|null)\b")


def _pythonize(text: str) -> str:
    """JSON's ``true``/``false``/``null`` as Python's, outside strings, for literal_eval."""
    out = []
    for chunk, is_string in _scan(_repair(text)):
        if not is_string:
            chunk = _WORD.sub(lambda m: _JSON_WORDS[m.group(1)], chunk)
        out.append(chunk)
    return "".join(out)
