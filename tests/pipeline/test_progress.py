"""``zhufu run``'s console: one line per stage; what the stages print goes to the log."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from zhufu.pipeline.progress import StageProgress


def test_stage_output_goes_to_the_log_and_one_line_to_the_console(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    console = io.StringIO()
    progress = StageProgress(tmp_path / "run.log", total=2, console=console)
    seconds: dict[str, float] = {}
    with progress.stage("sft", seconds) as line:
        print("{'loss': 1.0}")
        sys.stderr.write("  3%|▎   | 1/30\n")
        os.write(1, b"from C\n")
        os.write(2, b"warning from C\n")
        line.done("loss 1.000")
    with progress.stage("grpo", seconds):
        pass
    progress.note("warning: something fell")
    out = console.getvalue().splitlines()
    assert len(out) == 3
    assert out[0].startswith("[1/2] sft") and out[0].endswith("s  loss 1.000")
    assert out[1].startswith("[2/2] grpo") and out[2].strip() == "warning: something fell"
    log = (tmp_path / "run.log").read_text(encoding="utf-8")
    for text in ("{'loss': 1.0}", "1/30", "from C", "warning from C", "=== zhufu run: sft",
                 "zhufu: warning: something fell"):
        assert text in log
    assert set(seconds) == {"sft", "grpo"} and seconds["sft"] >= 0
    captured = capfd.readouterr()  # nothing reached the real stdout / stderr
    assert "loss" not in captured.out + captured.err and "from C" not in captured.out
    print("back")  # the descriptors are restored
    assert capfd.readouterr().out == "back\n"


def test_a_failing_stage_shows_the_log_tail_and_raises(tmp_path: Path) -> None:
    console = io.StringIO()
    progress = StageProgress(tmp_path / "run.log", total=1, console=console)
    seconds: dict[str, float] = {}
    with pytest.raises(RuntimeError, match="boom"), progress.stage("curate", seconds):
        print("the last thing the stage said")
        raise RuntimeError("boom")
    text = console.getvalue()
    assert "[1/1] curate" in text and "failed after" in text
    assert "the last thing the stage said" in text and "curate" in seconds
