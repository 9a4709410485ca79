"""Malformed data files: ``zhufu data validate`` names file, row and field for each, and a good
file checked in the same call still validates (nothing else disturbed).

These are the kinds ``tests/pipeline/data/test_data_malformed.py`` does not already try
(that file holds ~40 cases: missing/empty/non-string fields, bad bytes, huge fields and
lines, truncated JSON, missing commas, parquet with the wrong column or struct). All files
are checked by ONE real ``zhufu data validate`` subprocess; each case then reads its line.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from reltools import Ran, zhufu

SFT = [{"instruction": "写一条生日祝福", "input": "", "output": "生日快乐，愿你天天开心！"}]
PAIR = {"conversations": [{"from": "human", "value": "生日祝福语"}],
        "chosen": {"from": "gpt", "value": "生日快乐，愿你天天开心！"},
        "rejected": {"from": "gpt", "value": "生日快乐"}}
ROW = {"query": "生日祝福语", "response": "生日快乐", "label": 1}
MSG_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def _j(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _pair(**change: str) -> list[dict]:
    p = json.loads(_j(PAIR))
    for side, value in change.items():
        p[side]["value"] = value
    return [p]


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _half_parquet() -> bytes:
    raw = _parquet(pa.table({"prompt": [[{"role": "user", "content": "生日"}]]}))
    return raw[: len(raw) // 2]


# (file name, bytes, substrings the error line must hold besides the file name)
CASES: list[tuple[str, Callable[[], bytes], tuple[str, ...]]] = [
    ("gbk-sft.json", lambda: _j(SFT).encode("gbk"),
     ("row 1", "'instruction'", "invalid UTF-8")),
    ("gbk-queries.txt", lambda: "生日祝福语\n中秋祝福\n".encode("gbk"),
     ("row 1", "'query'", "invalid UTF-8")),
    ("gbk-labelled.jsonl", lambda: (_j(ROW) + "\n").encode("gbk"),
     ("row 1", "'query'", "invalid UTF-8")),
    ("utf16-sft.json", lambda: _j(SFT).encode("utf-16"), ("not JSON",)),
    ("truncated-pairs.json", lambda: _j([PAIR]).encode()[:60],
     ("row 1", "invalid JSON", "Unterminated string")),
    ("top-level-object.json", lambda: _j(SFT[0]).encode(), ("row 1", "missing")),
    ("nan-output.json", lambda: b'[{"instruction": "a", "input": "", "output": NaN}]',
     ("row 1", "'output'", "expected a string")),
    ("deep-nesting.json", lambda: b"[" * 100_000 + b"]" * 100_000,
     ("row 1", "nested too deeply")),
    ("deep-nesting.jsonl", lambda: b"[" * 100_000 + b"]" * 100_000 + b"\n",
     ("row 1", "nested too deeply")),
    ("pairs-empty-chosen.json", lambda: _j(_pair(chosen="")).encode(),
     ("row 1", "'chosen.value'", "empty")),
    ("pairs-blank-rejected.json", lambda: _j(_pair(rejected="  \n\t")).encode(),
     ("row 1", "'rejected.value'", "empty")),
    ("labelled-null-label.jsonl", lambda: (_j({**ROW, "label": None}) + "\n").encode(),
     ("row 1", "'label'", "got None")),
    ("whitespace-only.json", lambda: b"  \n\n \t\n", ("empty file",)),
    ("html-error-page.json", lambda: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
     ("not JSON",)),
    ("gzip-bytes.json", lambda: gzip.compress(_j(SFT).encode()), ("not JSON",)),
    ("huge-line.jsonl", lambda: (_j({**ROW, "response": "祝" * 400_000}) + "\n").encode(),
     ("row 1", "line too long")),
    ("csv-as.jsonl", lambda: "query,response,label\n生日祝福语,生日快乐,1\n".encode(),
     ("row 1", "invalid JSON")),
    ("truncated.parquet", _half_parquet, ("unreadable parquet",)),
    ("zero-bytes.parquet", lambda: b"", ("no PAR1",)),
    ("int-prompt.parquet", lambda: _parquet(pa.table({"prompt": [1, 2, 3]})),
     ("'prompt'", "expected a list of {role, content}", "int64")),
    ("zero-rows.parquet", lambda: _parquet(pa.table({"prompt": pa.array([], type=MSG_TYPE)})),
     ("no rows",)),
    ("second-row-gbk.jsonl", lambda: (_j(ROW) + "\n").encode() + (_j(ROW) + "\n").encode("gbk"),
     ("row 2", "'query'", "invalid UTF-8")),
    ("esc-in-response.jsonl",
     lambda: (_j(ROW) + "\n" + _j({**ROW, "response": "生日\x1b[31m快乐"}) + "\n").encode(),
     ("row 2", "'response'", "control character U+001B at character 3")),
    ("nul-in-output.json", lambda: _j([{**SFT[0], "output": "生日快乐\x00"}]).encode(),
     ("row 1", "'output'", "control character U+0000")),
    ("bel-in-prompt.parquet",
     lambda: _parquet(pa.table({"prompt": [[{"role": "user", "content": "生日\x07祝福"}]]},
                               schema=pa.schema([("prompt", MSG_TYPE)]))),
     ("row 1", "'prompt[0].content'", "control character U+0007")),
]


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ran, dict[str, str]]:
    """One ``zhufu data validate`` over every case plus a good file; error line per file."""
    d = tmp_path_factory.mktemp("bad-data")
    for name, make, _ in CASES:
        (d / name).write_bytes(make())
    (d / "good-sft.json").write_text(_j(SFT), encoding="utf-8")
    names = [name for name, *_ in CASES]
    ran = zhufu(["data", "validate", "--json", *names[:10], "good-sft.json", *names[10:]],
                d, timeout=120)
    errors: dict[str, str] = {}
    for line in ran.stderr.splitlines():
        if line.startswith("error: "):
            file = line.removeprefix("error: ").split(":", 1)[0]
            errors[file] = line
    return ran, errors


def test_at_least_twenty_new_kinds() -> None:
    assert len(CASES) >= 20 and len({n for n, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "make", "expect"), CASES, ids=[c[0] for c in CASES])
def test_bad_file_is_named_with_its_problem(validated: tuple[Ran, dict[str, str]], name: str,
                                            make: Callable[[], bytes],
                                            expect: tuple[str, ...]) -> None:
    ran, errors = validated
    assert ran.rc == 1
    assert "Traceback" not in ran.stderr
    line = errors.get(name)
    assert line is not None, f"no error for {name}; stderr: {ran.stderr[-1500:]}"
    for part in expect:
        assert part in line, (part, line)


def test_good_file_in_the_same_call_still_validates(validated: tuple[Ran, dict[str, str]]
                                                    ) -> None:
    ran, errors = validated
    summaries = [json.loads(line) for line in ran.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1 and summaries[0]["rows"] == 1, ran.stdout
    assert "good-sft.json" not in errors and len(errors) == len(CASES)


def test_nul_bytes_query_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "nul.txt").write_bytes(b"\x00\x00\x00\x00\n")
    ran = zhufu(["data", "validate", "nul.txt"], tmp_path, timeout=60)
    assert ran.rc == 1 and "Traceback" not in ran.stderr
    assert "nul.txt: row 1, field 'query': control character U+0000" in ran.stderr, ran.stderr
