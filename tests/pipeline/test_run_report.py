"""``zhufu run``'s bookkeeping: what a stage's result leaves for the report and its line."""

from __future__ import annotations

from pathlib import Path

from zhufu.pipeline.results import StageResult
from zhufu.pipeline.run import RunState, _figures, _record, summary_rows


def test_grpo_keeps_the_readable_share_for_the_report_and_its_line(tmp_path: Path) -> None:
    state = RunState(work=tmp_path)
    _record(state, "grpo", StageResult(stage="grpo", metrics={
        "steps": 30.0, "train_loss": 0.1, "readable_share/first": 0.9,
        "readable_share/last": 0.95, "readable_share/min": 0.8,
        "readable_share/warnings": 0.0}))
    assert state.metrics["grpo/readable_share/min"] == 0.8
    assert "grpo/train_loss" not in state.metrics
    assert state.outputs["grpo_policy"] == "models:/zhufu-policy@grpo"
    line = _figures("grpo", state)
    assert "30 steps" in line and "90% → 95%" in line and "lowest 80%" in line


def test_summary_rows_one_column_per_policy() -> None:
    dims = {"language_quality": 4.0, "creativity": 3.0}
    report = {"policies": {
        "sft": {"judge_overall": 3.5, "judge": dims, "mean_length": 36.0, "readable_share": 0.96},
        "grpo": {"judge_overall": 3.7, "judge": dims, "mean_length": 35.0,
                 "readable_share": 0.97}}}
    rows = summary_rows(report)
    assert rows[0] == ("judge overall (1–5)", "3.50", "3.70")
    assert ("readable share", "96%", "97%") in rows and all(len(r) == 3 for r in rows)
