"""fastjson reads and writes what the standard library does, with orjson and without it."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from typing import Any

import pytest

from zhufu.pipeline import fastjson


class Label(enum.StrEnum):
    GOOD = "good"


@dataclass
class Row:
    text: str


VALUES: list[Any] = [
    {"model": "m", "messages": [{"role": "user", "content": "写一句生日祝福🎂"}],
     "temperature": 0.7, "max_tokens": 512, "seed": None, "stream": False},
    {"n": [1, -2, 2.5, 1e-7, 1e16, True, None], "s": "引号\"反斜杠\\换行\n\t"},
    {1: "int key", None: "null key"},          # non-string keys: json coerces them
    {"big": 2 ** 70},                           # beyond 64 bits
    {"label": Label.GOOD},                      # str subclass
    [],
    "只是一个字符串",
]


@pytest.fixture(params=["orjson", "stdlib"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "orjson":
        pytest.importorskip("orjson")
    else:
        monkeypatch.setattr(fastjson, "orjson", None)
    return request.param


@pytest.mark.parametrize("value", VALUES)
def test_dumps_round_trips_like_json(backend: str, value: Any) -> None:
    blob = fastjson.dumps(value)
    assert isinstance(blob, bytes)
    assert b": " not in blob and b", " not in blob and b"\\u" not in blob  # compact, UTF-8
    assert json.loads(blob) == json.loads(json.dumps(value))
    assert fastjson.loads(blob) == json.loads(blob)
    assert fastjson.loads(blob.decode("utf-8")) == json.loads(blob)


def test_dumps_refuses_what_json_refuses(backend: str) -> None:
    for bad in (Row("x"), {"s": {1, 2}}, object()):
        with pytest.raises(TypeError):
            fastjson.dumps(bad)


def test_loads_accepts_what_json_accepts(backend: str) -> None:
    assert math.isnan(fastjson.loads(b'{"x": NaN}')["x"])
    assert fastjson.loads(b'"\\ud83d"') == "\ud83d"  # a lone surrogate, as json reads it
    assert fastjson.loads(b' {"a": 1} \n') == {"a": 1}


@pytest.mark.parametrize("number", [2 ** 64, 2 ** 64 - 1, 2 ** 70, -(2 ** 63), -(2 ** 63) - 1,
                                    -(2 ** 80), 10 ** 30, 10 ** 18])
@pytest.mark.parametrize("as_bytes", [True, False])
def test_loads_reads_integers_of_any_size_as_json_does(backend: str, number: int,
                                                       as_bytes: bool) -> None:
    text = f'{{"id": {number}, "note": "编号{number}", "list": [{number}, 1.5]}}'
    got = fastjson.loads(text.encode("utf-8") if as_bytes else text)
    assert got == json.loads(text)
    assert type(got["id"]) is int and got["id"] == number  # not a rounded float


@pytest.mark.parametrize("text", ["18446744073709551616", "-1e19", "[1e300, 9.3e18, -0.5]",
                                  '{"a": {"b": [1, {"c": 12345678901234567890123}]}}',
                                  '{"x": 1.5, "y": [9223372036854775807, "1e30"]}'])
def test_loads_reads_large_numbers_anywhere_as_json_does(backend: str, text: str) -> None:
    got = fastjson.loads(text)
    assert got == json.loads(text) and repr(got) == repr(json.loads(text))


@pytest.mark.parametrize("bad", [b"", b"{", b"not json", b'{"a": 1} trailing', b"\xff\xfe"])
def test_loads_raises_value_error_on_garbage(backend: str, bad: bytes) -> None:
    with pytest.raises(ValueError):
        fastjson.loads(bad)


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str).encode("utf-8")


CANONICAL: list[Any] = [
    *[v for v in VALUES if not (isinstance(v, dict) and None in v)],  # json cannot sort None
    {"b": 1e-05, "a": [1e16, 9999999999999998.0, 1e-4, -0.0, 0.1 + 0.2]},
    {"x": math.nan, "y": [math.inf, -math.inf]},
    {"row": Row("dataclass: json's default=str"), "t": ("tuple", 1)},
    {"a": "\u2028\x01\x7f控制"},
    {"key": {"z": 1, "a": {"m": [{"b": 2, "a": 1}]}}, "": ""},
]


@pytest.mark.parametrize("value", CANONICAL)
def test_canonical_is_byte_for_byte_json_with_sorted_keys(backend: str, value: Any) -> None:
    """Content addresses (the curation journal's keys) hash these bytes: they must not move."""
    assert fastjson.canonical(value) == _canonical_json(value)


def test_canonical_matches_json_on_random_values() -> None:
    import random

    rng = random.Random(7)

    def value(depth: int) -> Any:
        pick = rng.randrange(9 if depth < 3 else 6)
        if pick == 0:
            return rng.choice([None, True, False, 0, -1, 2 ** 63, 2 ** 64, -(2 ** 63) - 1])
        if pick == 1:
            return rng.choice([-1, 1]) * rng.random() * 10 ** rng.randint(-8, 20)
        if pick == 2:
            return rng.choice([0.0, 1e-4, 9.999e-5, 1e16, 0.7, 7.5])
        if pick in (3, 4, 5):
            return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x4e00, 0x9fff),
                                            rng.randrange(0, 32), 0x1F382]))
                           for _ in range(rng.randrange(6)))
        if pick == 6:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {str(value(3)): value(depth + 1) for _ in range(rng.randrange(4))}

    for _ in range(3000):
        v = value(0)
        assert fastjson.canonical(v) == _canonical_json(v), v


TEXTS = ["写一句生日祝福🎂", "引号\"反斜杠\\换行\n\t\x01\x1f\x7f\u2028</data>", "",
         "lone \ud83d surrogate", Label.GOOD]


@pytest.mark.parametrize("text", TEXTS)
def test_string_is_json_dumps_of_the_text(backend: str, text: str) -> None:
    """Prompts quote text with it: the bytes a model reads (and journal keys) must not move."""
    assert fastjson.string(text) == json.dumps(text, ensure_ascii=False)


def test_string_matches_json_on_every_code_point() -> None:
    pytest.importorskip("orjson")
    text = "".join(chr(c) for c in range(0x30000) if not 0xD800 <= c <= 0xDFFF)
    for i in range(0, len(text), 4096):
        assert fastjson.string(text[i:i + 4096]) == json.dumps(text[i:i + 4096],
                                                                ensure_ascii=False)
