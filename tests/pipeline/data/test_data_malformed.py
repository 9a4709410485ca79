"""Malformed files: every loader error names the file, the 1-based row and the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zhufu.pipeline.data import (
    DataError,
    load_labelled,
    load_pairs,
    load_prompts,
    load_queries,
    load_sft,
    read_jsonl,
)


def _alpaca(*rows: Any) -> bytes:
    return json.dumps(list(rows), ensure_ascii=False, indent=2).encode()


def _pair(q: Any = "生日祝福语", chosen: Any = None, rejected: Any = None,
          conv: Any = None) -> dict[str, Any]:
    return {"conversations": conv if conv is not None else [{"from": "human", "value": q}],
            "chosen": chosen if chosen is not None else {"from": "gpt", "value": "天天开心！"},
            "rejected": rejected if rejected is not None else {"from": "gpt", "value": "快乐"}}


def _jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


GOOD_SFT = {"instruction": "生日祝福", "input": "", "output": "生日快乐！"}
GOOD_L = '{"query": "生日祝福", "response": "生日快乐！", "label": 1}'

# (case id, file name, content, loader, row, field, words the reason must contain)
CASES: list[tuple[str, str, bytes, Callable[..., Any], int, str, str]] = [
    ("sft-missing-output", "a.json",
     _alpaca(GOOD_SFT, {"instruction": "中秋祝福", "input": ""}), load_sft, 2, "output",
     "missing"),
    ("sft-output-not-string", "a.json",
     _alpaca({"instruction": "q", "input": "", "output": 42}), load_sft, 1, "output",
     "expected a string"),
    ("sft-empty-output", "a.json",
     _alpaca(GOOD_SFT, GOOD_SFT, {"instruction": "q", "input": "", "output": "  "}), load_sft,
     3, "output", "empty"),
    ("sft-invalid-utf8", "a.json",
     _alpaca(GOOD_SFT, GOOD_SFT).replace("生日快乐！".encode(), b"\xff\xfe!", 1), load_sft, 1,
     "output", "invalid UTF-8"),
    ("sft-huge-field", "a.json",
     _alpaca(GOOD_SFT, {"instruction": "q", "input": "", "output": "福" * 40_000}), load_sft,
     2, "output", "too long"),
    ("pairs-chosen-not-object", "p.json",
     json.dumps([_pair(), _pair(chosen="生日快乐")]).encode(), load_pairs, 2, "chosen",
     "expected an object"),
    ("pairs-rejected-from-human", "p.json",
     json.dumps([_pair(rejected={"from": "human", "value": "x"})]).encode(), load_pairs, 1,
     "rejected.from", "expected 'gpt'"),
    ("pairs-empty-conversation", "p.json",
     json.dumps([_pair(), _pair(), _pair(conv=[])]).encode(), load_pairs, 3, "conversations",
     "one human message"),
    ("pairs-empty-query", "p.json",
     json.dumps([_pair(q="")]).encode(), load_pairs, 1, "conversations[0].value", "empty"),
    ("pairs-escaped-surrogate", "p.json",  # an escape, not a bad byte: JSON arrays check too
     (json.dumps([_pair()])[:-1] + ', {"source": "\\ud83d", ' + json.dumps(_pair())[1:]
      + "]").encode(), load_pairs, 2, "source", "lone surrogate"),
    ("labelled-label-2", "l.jsonl", _jsonl(GOOD_L, GOOD_L.replace(": 1}", ": 2}")),
     load_labelled, 2, "label", "0/1"),
    ("labelled-label-string", "l.jsonl", _jsonl(GOOD_L.replace(": 1}", ': "1"}')),
     load_labelled, 1, "label", "0/1"),
    ("labelled-missing-response", "l.jsonl",
     _jsonl(GOOD_L, GOOD_L, '{"query": "q", "label": 0}'), load_labelled, 3, "response",
     "missing"),
    ("labelled-empty-response", "l.jsonl",
     _jsonl('{"query": "q", "response": "", "label": 0}'), load_labelled, 1, "response", "empty"),
    ("labelled-bad-byte", "l.jsonl",
     _jsonl(GOOD_L) + b'{"query": "q", "response": "\xe4\xbd", "label": 0}\n', load_labelled, 2,
     "response", "invalid UTF-8"),
    ("labelled-escaped-surrogate", "l.jsonl",
     _jsonl(GOOD_L, '{"query": "q", "response": "\\ud83d", "label": 0}'), load_labelled, 2,
     "response", "lone surrogate"),
    ("queries-blank-middle", "q.txt", "生日祝福语\n中秋祝福\n\n端午祝福\n".encode(),
     load_queries, 3, "query", "blank line"),
    ("queries-invalid-utf8", "q.txt", "生日祝福语\n".encode() + b"\xc3\x28bad\n",
     load_queries, 2, "query", "invalid UTF-8"),
    ("queries-huge-line", "q.txt", ("生日祝福语\n" + "祝" * 60_000 + "\n").encode(),
     load_queries, 2, "query", "too long"),
    ("jsonl-required-field", "rows.jsonl",
     _jsonl('{"query": "q", "response": "r", "id": 1}', '{"query": "q", "id": 2}'),
     lambda p: read_jsonl(p, require=("query", "response")), 2, "response", "missing"),
]


@pytest.mark.parametrize(("case", "name", "content", "loader", "row", "field", "reason"), CASES,
                         ids=[c[0] for c in CASES])
def test_malformed_row(tmp_path: Path, case: str, name: str, content: bytes,
                       loader: Callable[..., Any], row: int, field: str, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        loader(path)
    err = info.value
    assert (err.file, err.row, err.field) == (str(path), row, field), str(err)
    assert reason in err.reason, str(err)
    message = str(err)
    assert str(path) in message and f"row {row}" in message and f"'{field}'" in message


def _parquet(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path)


def _msgs(*contents: str, role: str = "user") -> list[dict[str, str]]:
    return [{"role": role, "content": c} for c in contents]


def test_parquet_empty_message(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    _parquet(path, pa.Table.from_pylist([{"prompt": _msgs("请只生成一条祝福语：生日")},
                                         {"prompt": _msgs("")}]))
    with pytest.raises(DataError) as info:
        load_prompts(path)
    assert (info.value.row, info.value.field) == (2, "prompt[0].content")
    assert str(path) in str(info.value) and "row 2" in str(info.value)


def test_parquet_wrong_role(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    _parquet(path, pa.Table.from_pylist([{"prompt": _msgs("hi", role="bot")}]))
    with pytest.raises(DataError) as info:
        load_prompts(path)
    assert (info.value.row, info.value.field) == (1, "prompt[0].role")
    assert "'bot'" in info.value.reason


def test_parquet_null_prompt_row(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    _parquet(path, pa.Table.from_pylist([{"prompt": _msgs("生日")}, {"prompt": _msgs("春节")},
                                         {"prompt": None}]))
    with pytest.raises(DataError) as info:
        load_prompts(path)
    assert (info.value.row, info.value.field) == (3, "prompt")


@pytest.mark.parametrize(("table", "reason"), [
    (pa.table({"prompt": ["请只生成一条祝福语：生日"]}), "expected a list of {role, content}"),
    (pa.table({"question": ["生日"]}), "missing column"),
    (pa.Table.from_pylist([{"prompt": [{"role": "user", "text": "x"}]}]),
     "need 'role' and 'content'"),
], ids=["prompt-is-string", "no-prompt-column", "struct-without-content"])
def test_parquet_wrong_schema(tmp_path: Path, table: pa.Table, reason: str) -> None:
    path = tmp_path / "p.parquet"
    _parquet(path, table)
    with pytest.raises(DataError) as info:
        load_prompts(path)
    assert info.value.field == "prompt" and info.value.row is None
    assert reason in info.value.reason and str(path) in str(info.value)


def test_truncated_json_names_the_row(tmp_path: Path) -> None:
    """A file cut off inside its third row: the error says row 3 and where the JSON breaks."""
    text = json.dumps([_pair(), _pair(), _pair()], ensure_ascii=False, indent=2)
    path = tmp_path / "cut.json"
    path.write_text(text[: text.rindex("chosen")], encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_pairs(path)
    assert info.value.row == 3 and "invalid JSON at line" in info.value.reason


def test_missing_comma_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('[{"instruction": "a", "input": "", "output": "b"}\n'
                    ' {"instruction": "c", "input": "", "output": "d"}]', encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_sft(path)
    assert info.value.row == 1 and "expected ',' or ']'" in info.value.reason


def test_jsonl_invalid_line_and_non_object(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_bytes(_jsonl(GOOD_L, GOOD_L, '{"query": "q", "response": "r", "label": 1'))
    with pytest.raises(DataError) as info:
        load_labelled(path)
    assert info.value.row == 3 and "invalid JSON" in info.value.reason
    path.write_bytes(_jsonl(GOOD_L, '["q", "r", 1]'))
    with pytest.raises(DataError) as info:
        load_labelled(path)
    assert info.value.row == 2 and "expected a JSON object, got array" in info.value.reason


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("empty.json", b"", "empty file"),
    ("empty2.json", b"[]", "no rows"),
    ("obj.json", b"[1, 2]", "expected a JSON object"),
    ("fake.parquet", b"not parquet at all", "no PAR1"),
    ("keys.json", b'[{"prompt": "x"}]', "cannot tell the format"),
    ("trail.json", b'[{"instruction": "a", "input": "", "output": "b"}] []', "extra data"),
])
def test_file_level_errors(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_queries(path)
    assert reason in str(info.value) and str(path) in str(info.value)
