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


@pytest.mark.parametrize("bad", [b"", b"{", b"not json", b'{"a": 1} trailing', b"\xff\xfe"])
def test_loads_raises_value_error_on_garbage(backend: str, bad: bytes) -> None:
    with pytest.raises(ValueError):
        fastjson.loads(bad)
