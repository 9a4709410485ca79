"""``zhufu run``: the whole loop on the embedded default, shortened (slow: several minutes)."""

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
    proc = subprocess.run([str(zhufu), "run", "--grpo-steps", "2", "--judge-rounds", "1",
                           "--report", str(report)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(report.read_text(encoding="utf-8"))
    for key in ("sft", "grpo", "win_rate", "lc_win_rate", "wall_seconds"):
        assert key in data
    assert data["stages"]["curate/pairs"] > 0 and data["stages"]["grpo/steps"] == 2
    assert report.with_suffix(".png").is_file()
    assert "SFT vs GRPO" in proc.stdout
