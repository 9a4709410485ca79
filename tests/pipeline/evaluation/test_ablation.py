"""What an ablated component changed, measured on the curation's own outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhufu.pipeline.data.rows import PreferencePair
from zhufu.pipeline.data.writers import write_pairs
from zhufu.pipeline.errors import ConfigError
from zhufu.pipeline.evaluation.ablation import curation_changes, unchanged
from zhufu.pipeline.run import RunSettings, parse_ablations, plan


def _outputs(folder: Path, verdicts: list[tuple[str, str, str, float]],
             pairs: list[PreferencePair]) -> dict[str, str]:
    folder.mkdir()
    trace = folder / "trace.jsonl"
    trace.write_text("".join(json.dumps({"query": q, "response": r, "final": {
        "verdict": v, "score": s}}, ensure_ascii=False) + "\n" for q, r, v, s in verdicts),
        encoding="utf-8")
    write_pairs(pairs, folder / "pairs.json")
    return {"trace": str(trace), "pairs": str(folder / "pairs.json")}


def test_curation_changes_count_verdicts_scores_and_pairs(tmp_path: Path) -> None:
    rows = [("q", "好", "good", 4.0), ("q", "坏", "bad", 1.0), ("p", "中", "good", 3.0)]
    pair = PreferencePair("q", "好", "坏")
    full = _outputs(tmp_path / "full", rows, [pair])
    same = _outputs(tmp_path / "same", rows, [pair])
    changes = curation_changes(full, same)
    assert changes["candidates"] == 3 and unchanged(changes)
    verdict_only = _outputs(tmp_path / "verdict", [rows[0], rows[1], ("p", "中", "bad", 2.0)],
                            [pair])
    changes = curation_changes(full, verdict_only)
    assert changes["verdicts_changed"] == 1 and unchanged(changes)  # the same pairs
    other = _outputs(tmp_path / "other", [rows[0], ("q", "坏", "good", 3.5), rows[2]],
                     [PreferencePair("q", "好", "中")])
    changes = curation_changes(full, other)
    assert (changes["verdicts_changed"], changes["scores_changed"],
            changes["pairs_changed"]) == (1, 1, 2)
    assert not unchanged(changes)


def test_ablations_need_their_reward_and_add_their_steps() -> None:
    assert parse_ablations("debate,reflector", ("rm", "judge")) == ("debate", "reflector")
    with pytest.raises(ConfigError, match="--ablate debate: ablates the rm reward"):
        parse_ablations("debate", ("judge",))
    with pytest.raises(ConfigError, match="expected debate or reflector, got 'critic'"):
        parse_ablations("critic", ("rm",))
    steps = plan(RunSettings(rewards=("rm", "judge"), ablate=("debate", "reflector")))
    assert [(s.name, s.requires) for s in steps][4:] == [
        ("curate-no-debate", None), ("train-rm-no-debate", "pairs-no-debate"),
        ("judge-train-no-reflector", None), ("grpo-rm", None), ("grpo-judge", None),
        ("grpo-rm-no-debate", "reward_model-no-debate"),
        ("grpo-judge-no-reflector", "judge-no-reflector")]
    assert steps[5].prefix == "rm-no-debate" and steps[6].prefix == "judge-no-reflector"


def test_a_judge_is_unchanged_only_when_no_verdict_or_score_moves() -> None:
    assert unchanged({"texts": 10, "verdicts_changed": 0, "scores_changed": 0})
    assert not unchanged({"texts": 10, "verdicts_changed": 0, "scores_changed": 3})
