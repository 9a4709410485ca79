"""The lenient JSON-output parser: what models really write comes back as a dict, garbage
comes back as None and nothing raises. Also runs the doctests of the llm package."""

from __future__ import annotations

import doctest
import importlib
import time

import pytest

from zhufu.pipeline.llm.parsing import MAX_CHARS, parse_json_output

GOOD = [
    ('{"score": 5, "reason": "温暖"}', {"score": 5, "reason": "温暖"}),
    ('```json\n{"score": 3}\n```', {"score": 3}),
    ('```\n{"score": 3}\n```', {"score": 3}),
    ('```JSON {"score": 3}```', {"score": 3}),
    ('好的，评分如下：\n```json\n{"a": 1}\n```\n以上。', {"a": 1}),
    ('Here is my verdict: {"label": 0, "reason": "too generic"} Thanks!',
     {"label": 0, "reason": "too generic"}),
    ('{"scores": [4, 5, 3,], "ok": true,}', {"scores": [4, 5, 3], "ok": True}),
    ("{'label': 1, 'reason': 'fits the occasion'}", {"label": 1, "reason": "fits the occasion"}),
    ("{'ok': true, 'note': null}", {"ok": True, "note": None}),
    ('{\n  "a": 1, // the score\n  "b": "http://x.y/z"\n}', {"a": 1, "b": "http://x.y/z"}),
    ('{“score”: 4}', {"score": 4}),
    ('{"reason": "用了“福如东海”,很好", "score": 4}',
     {"reason": "用了“福如东海”,很好", "score": 4}),
    ('{"text": "a } b", "n": {"m": 2}}', {"text": "a } b", "n": {"m": 2}}),
    ("It's fine: {\"x\": 1}", {"x": 1}),
    ('\ufeff {"x": 1}', {"x": 1}),
    ('{"x": "trailing, }"}', {"x": "trailing, }"}),
    ('Scores {"draft": 1} then final ```json\n{"final": 2}\n```', {"final": 2}),
    ('{bad} but then {"good": 1}', {"good": 1}),
    ('Result: {note: {"score": 4}} ok', {"score": 4}),
]

BAD = [None, 42, b'{"x": 1}', "", "   ", "no json here", "[1, 2, 3]", '"just a string"',
       "{", "}{", "{'a': }", "{" * 5000, '{"a": 1' + "]" * 10, "```json\n```",
       "__import__('os').system('true')", "{'a': __import__('os')}", "{a b c}"]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_reads_what_models_write(text: str, expected: dict) -> None:
    assert parse_json_output(text) == expected


@pytest.mark.parametrize("text", BAD)
def test_garbage_is_none(text: object) -> None:
    assert parse_json_output(text) is None


def test_huge_input_is_none_quickly() -> None:
    assert parse_json_output('{"a": "' + "x" * MAX_CHARS + '"}') is None
    start = time.perf_counter()
    assert parse_json_output("{ \"x" * (MAX_CHARS // 4)) is None
    assert parse_json_output("{" * (MAX_CHARS - 1)) is None
    assert time.perf_counter() - start < 5


def test_deep_nesting_does_not_raise() -> None:
    assert parse_json_output("[" * 100_000 + "]" * 100_000) is None
    assert parse_json_output('{"a": ' * 50_000 + "1" + "}" * 50_000) is None
    assert parse_json_output('{"a": ' * 20 + "1" + "}" * 20) is not None


@pytest.mark.parametrize("module", ["zhufu.pipeline.llm", "zhufu.pipeline.llm.parsing",
                                    "zhufu.pipeline.llm.retry",
                                    "zhufu.pipeline.llm.openai_compat"])
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
