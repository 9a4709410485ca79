"""JSON for the hot paths (LLM request bodies and replies, journal lines): orjson when present.

:func:`dumps` gives compact UTF-8 bytes with non-ASCII kept as is; :func:`loads` reads bytes
or text. orjson does either in a fraction of the standard library's time (a chat body: ~1 µs
against ~7 µs; a completion reply: ~2.5 µs against ~10 µs), which counts when one process
sends hundreds of calls a second. Whatever orjson refuses falls back to the standard library,
so both accept exactly what ``json`` accepts: non-string keys, integers beyond 64 bits and
``str``/``dict`` subclasses are encoded by ``json``; ``NaN`` literals, lone surrogates and
integers beyond 64 bits are decoded by ``json``; anything ``json`` refuses raises its usual
``TypeError``/``ValueError``.
Without orjson installed (an environment set up before it was a dependency) the standard
library does all of it.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ModuleNotFoundError:  # pragma: no cover - orjson is a dependency; see the docstring
    orjson = None  # type: ignore[assignment]

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# dataclasses, datetimes and subclasses go to `default` (none), so orjson refuses them and
# the standard library decides, as it would without orjson
_ORJSON_OPTIONS = 0 if orjson is None else (orjson.OPT_PASSTHROUGH_DATACLASS
                                            | orjson.OPT_PASSTHROUGH_DATETIME
                                            | orjson.OPT_PASSTHROUGH_SUBCLASS)


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON bytes (``{"a":"祝福"}``, no spaces, no ``\\u`` escapes).

    >>> dumps({"q": "生日快乐", "n": [1, 2.5, None, True]})
    b'{"q":"\\xe7\\x94\\x9f\\xe6\\x97\\xa5\\xe5\\xbf\\xab\\xe4\\xb9\\x90","n":[1,2.5,null,true]}'
    """
    if orjson is not None:
        try:
            return orjson.dumps(value, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            pass
    return _ENCODE(value).encode("utf-8")


_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                             default=str).encode


_INT_RANGE = (-(2 ** 63), 2 ** 64)


def _orjson_canonical(value: Any) -> bool:
    """Whether orjson writes ``value`` with sorted keys exactly as :data:`_CANONICAL` does:
    only plain ``dict`` (``str`` keys), ``list``, ``tuple``, ``str``, ``int`` (64-bit),
    ``bool``, ``None`` and finite ``float`` printed without an exponent (``repr`` uses one
    below 1e-4 and from 1e16 on; orjson spells those differently: 1e-05 as 0.00001)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or (type(item) is not str and not _orjson_canonical(item)):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:
            if type(item) is not str and not _orjson_canonical(item):
                return False
        return True
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return _INT_RANGE[0] <= value < _INT_RANGE[1]
    if kind is float:  # NaN and infinities fail too
        return value == 0.0 or 1e-4 <= abs(value) < 1e16
    return False


def canonical(value: Any) -> bytes:
    """``value`` as UTF-8 JSON with sorted keys, compact, non-ASCII as is: byte for byte
    ``json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    default=str)`` (content addresses hashed from it, such as the curation journal's keys,
    must not change), by orjson when that gives the same bytes (~15 × faster on a chat
    request), else by the standard library.

    >>> canonical({"b": 1e-05, "a": ["祝福", 0.7]})
    b'{"a":["\xe7\xa5\x9d\xe7\xa6\x8f",0.7],"b":1e-05}'
    """
    if orjson is not None and _orjson_canonical(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # a lone surrogate, say: the standard library decides
            pass
    return _CANONICAL(value).encode("utf-8")


def string(text: str) -> str:
    """``text`` as a JSON string literal, exactly ``json.dumps(text, ensure_ascii=False)``
    (orjson escapes the same characters the same way: checked for every code point; a lone
    surrogate, which orjson refuses, and a ``str`` subclass go to the standard library).

    >>> string('祝福"\\n')
    '"祝福\\\\"\\\\n"'
    """
    if orjson is not None and type(text) is str:
        try:
            return orjson.dumps(text).decode("utf-8")
        except orjson.JSONEncodeError:
            pass
    return json.dumps(text, ensure_ascii=False)


#: orjson reads an integer literal outside [-2**63, 2**64) as a float (``json``: the exact
#: ``int``), and every such float has a magnitude of at least 2**63.
_BIG = float(2 ** 63)


def _has_big_float(value: Any) -> bool:
    """Whether a value orjson read holds a float of magnitude ≥ 2**63 (maybe an integer
    literal beyond 64 bits); a walk over the value, a few µs for an agent's answer."""
    kind = type(value)
    if kind is dict:
        for item in value.values():
            if type(item) is not str and _has_big_float(item):
                return True
        return False
    if kind is list:
        for item in value:
            if type(item) is not str and _has_big_float(item):
                return True
        return False
    return kind is float and not -_BIG < value < _BIG


def loads(data: bytes | str) -> Any:
    """The value in JSON ``data``; ``ValueError`` (``json.JSONDecodeError``) when it is not JSON.

    Exactly what ``json.loads`` gives: when orjson's value holds a float of magnitude ≥ 2**63
    (an integer beyond 64 bits is one there), ``json`` reads ``data`` again. The check walks
    the value (a regular expression for long digit runs over the text cost 30-40 µs a reply,
    several times orjson's parse).

    >>> loads(b'{"score": 4, "note": "\\xe5\\xa5\\xbd"}')
    {'score': 4, 'note': '好'}
    >>> loads("[18446744073709551616]")
    [18446744073709551616]
    """
    if orjson is not None:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            if type(value) is str or not _has_big_float(value):
                return value
    return json.loads(data)
