"""``zhufu data validate`` through the installed console script (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

ZHUFU = Path(sys.executable).parent / "zhufu"
STARTER = Path(__file__).resolve().parents[3] / "pipeline" / "data" / "starter"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ZHUFU), "data", "validate", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_validate_paper_files_and_starter(shared_data: Path) -> None:
    names = ["sft_data.json", "reward_data_train.json", "grpo_train.parquet",
             "random_query.txt"]
    proc = _run(*(str(shared_data / n) for n in names), str(STARTER / "labelled.jsonl"),
                "--json")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(s["format"], s["rows"]) for s in out[:4]] == [
        ("alpaca", 4000), ("sharegpt-pairs", 6310), ("verl-parquet", 3200),
        ("queries-txt", 10_000)]
    assert 55 < out[1]["mean_chosen_chars"] < 70 and out[1]["chosen_longer_fraction"] > 0.9
    assert out[4]["format"] == "labelled-jsonl"
    assert out[4]["rows"] == out[4]["good"] + out[4]["bad"] >= 100


def test_validate_text_output(shared_data: Path) -> None:
    proc = _run(str(shared_data / "grpo_test.parquet"))
    assert proc.returncode == 0, proc.stderr
    assert "format: verl-parquet" in proc.stdout and "rows: 800" in proc.stdout


def test_validate_malformed_and_missing_exit_1(tmp_path: Path) -> None:
    """Each bad file gets its error line (file, row, field); good files are still reported."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "response": "好", "label": 1}\n'
                   '{"query": "q", "response": "坏", "label": 1}\n'
                   '{"query": "q", "response": "", "label": 0}\n', encoding="utf-8")
    proc = _run(str(bad), str(tmp_path / "nope.txt"), str(STARTER / "queries.txt"))
    assert proc.returncode == 1
    assert f"{bad}: row 3, field 'response': empty" in proc.stderr
    assert f"{tmp_path / 'nope.txt'}: file not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "format: queries-txt" in proc.stdout


def test_validate_s3_uri(s3_server, shared_data: Path) -> None:  # noqa: ANN001
    bucket = f"zhufu-cli-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    client.upload_file(str(shared_data / "grpo_test.parquet"), bucket, "grpo_test.parquet")
    proc = _run(f"s3://{bucket}/grpo_test.parquet", env=s3_server.env)
    assert proc.returncode == 0, proc.stderr
    assert "format: verl-parquet" in proc.stdout and "rows: 800" in proc.stdout
