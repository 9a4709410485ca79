"""``zhufu run``: the whole loop on the embedded default, shortened (slow: several minutes).

It trains one GRPO policy per reward (``--reward rm,judge``), so it also checks the
multi-reward report: every policy against every other, in training order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_zhufu_run_writes_the_report(tmp_path: Path) -> None:
    zhufu = Path(sys.executable).parent / "zhufu"
    report = tmp_path / "report.json"
    env = {"ZHUFU_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(zhufu), "run", "--reward", "rm,judge", "--grpo-steps", "2",
                           "--judge-rounds", "1", "--report", str(report)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(report.read_text(encoding="utf-8"))
    names = ["sft", "grpo-rm", "grpo-judge"]
    assert list(data["policies"]) == names
    for policy in data["policies"].values():
        assert 0 <= policy["readable_share"] <= 1 and policy["samples"] > 0
    assert [(p["a"], p["b"]) for p in data["pairwise"]] == [
        ("sft", "grpo-rm"), ("sft", "grpo-judge"), ("grpo-rm", "grpo-judge")]
    for pair in data["pairwise"]:
        assert set(pair["ci95"]) == {"win_rate", "lc_win_rate"}
        assert 0 <= pair["win_rate"] <= 1 and 0 <= pair["lc_win_rate"] <= 1
    assert {x["policy"] for x in data["samples"]} == set(names)
    for sample in data["samples"]:
        assert {"query", "policy", "text", "score", "length"} <= set(sample)
    assert data["n_prompts"] >= 60 and "wall_seconds" in data and "load_average" in data
    assert data["stages"]["curate/pairs"] > 0
    for arm in names[1:]:
        assert data["stages"][f"{arm}/steps"] == 2 and f"{arm}/readable_share/first" in data[
            "stages"]
    # two GRPO versions, each from the same SFT policy
    assert data["outputs"]["grpo-rm_policy"] != data["outputs"]["grpo-judge_policy"]
    assert report.with_suffix(".png").is_file()
    # the console: one line per stage, then the table; TRL's step dictionaries in the log
    lines = proc.stdout.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("[")] == [
        "models", "data", "sft", "curate", "train-rm", "judge-train", "grpo-rm", "grpo-judge",
        "compare"]
    assert "'loss'" not in proc.stdout and "SFT vs GRPO" in proc.stdout
    assert "'loss'" in Path(data["log"]).read_text(encoding="utf-8")
