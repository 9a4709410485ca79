"""``zhufu data validate`` through the installed console script (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ZHUFU = Path(sys.executable).parent / "zhufu"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ZHUFU), "data", "validate", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_validate_paper_pairs(shared_data: Path) -> None:
    proc = _run(str(shared_data / "reward_data_train.json"))
    assert proc.returncode == 0, proc.stderr
    assert "format: sharegpt-pairs" in proc.stdout and "rows: 6310" in proc.stdout
    assert "mean_chosen_chars" in proc.stdout and "chosen_longer_fraction" in proc.stdout


def test_validate_json_output_on_starter_labels() -> None:
    starter = Path(__file__).resolve().parents[3] / "pipeline" / "data" / "starter"
    proc = _run(str(starter / "labelled.jsonl"), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["format"] == "labelled-jsonl"
    assert summary["rows"] == summary["good"] + summary["bad"] >= 100


def test_validate_malformed_exits_nonzero_naming_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"query": "q", "response": "好", "label": 1}\n'
                    '{"query": "q", "response": "坏", "label": 1}\n'
                    '{"query": "q", "response": "", "label": 0}\n', encoding="utf-8")
    proc = _run(str(path))
    assert proc.returncode == 1
    assert f"{path}: row 3, field 'response': empty" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_validate_missing_file(tmp_path: Path) -> None:
    proc = _run(str(tmp_path / "nope.txt"))
    assert proc.returncode == 1 and "file not found" in proc.stderr


def test_validate_s3_uri(s3_server, shared_data: Path) -> None:  # noqa: ANN001
    bucket = f"zhufu-cli-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    client.upload_file(str(shared_data / "grpo_test.parquet"), bucket, "grpo_test.parquet")
    proc = _run(f"s3://{bucket}/grpo_test.parquet", env=s3_server.env)
    assert proc.returncode == 0, proc.stderr
    assert "format: verl-parquet" in proc.stdout and "rows: 800" in proc.stdout


@pytest.mark.parametrize(("name", "fmt", "rows"), [("sft_data.json", "alpaca", "4000"),
                                                   ("random_query.txt", "queries-txt", "10000")])
def test_validate_other_formats(shared_data: Path, name: str, fmt: str, rows: str) -> None:
    proc = _run(str(shared_data / name))
    assert proc.returncode == 0, proc.stderr
    assert f"format: {fmt}" in proc.stdout and f"rows: {rows}" in proc.stdout
