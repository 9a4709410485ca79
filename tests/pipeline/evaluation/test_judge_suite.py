"""The judge test suite and ``zhufu eval judge``: figures that a perfect scorer, a length
scorer and the default judge get on the project's test sets, and the command's output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from zhufu.pipeline.evaluation.judge_suite import (
    cached,
    degenerate_report,
    format_report,
    guard_floor,
    guarded_scorer,
    pairs_report,
    project_goods,
    run_suite,
    scored_once,
)
from zhufu.pipeline.judge.testsets import degenerate_items, principle_pairs

ZHUFU = Path(sys.executable).parent / "zhufu"


def oracle(texts: Sequence[tuple[str, str]]) -> tuple[list[float], list[int]]:
    """Knows the answer: good greetings 5 / good, everything else 1 / bad."""
    good = set(project_goods()) | {(p.query, p.good) for p in principle_pairs()}
    return ([5.0 if t in good else 1.0 for t in texts], [int(t in good) for t in texts])


def length(texts: Sequence[tuple[str, str]]) -> tuple[list[float], None]:
    """Prefers longer text, knows nothing else (no labels, like a reward model)."""
    return [float(len(t)) for _, t in texts], None


def test_oracle_gets_everything_right() -> None:
    report = run_suite(oracle)
    deg, pairs = report["degenerate"], report["pairs"]
    assert deg["bad_share"] == 1.0 and deg["auc"] == 1.0 and deg["n"] == len(degenerate_items())
    assert set(deg["by_split"]) == {"tune", "held_out", "final"}
    for split in ("tune", "held_out", "final"):
        assert pairs[split]["pair_acc"] == 1.0 and pairs[split]["label_acc"] == 1.0
        assert set(pairs[split]["by_kind"]) >= {"taboo", "generic"}
    assert pairs["misranked"] == []
    text = format_report(report)
    assert f"degenerate set: n={len(degenerate_items())}" in text
    assert "held_out" in text and "taboo" in text


def test_a_length_scorer_is_fooled_and_the_report_shows_it() -> None:
    report = run_suite(length)
    deg, pairs = report["degenerate"], report["pairs"]
    assert "bad_share" not in deg and "label_acc" not in pairs["tune"]  # scores only
    assert deg["by_kind"]["written_twice"]["auc"] < 0.5  # twice as long: ranked above
    assert 0.3 < pairs["tune"]["pair_acc"] < 0.75  # equal length: close to chance
    assert pairs["misranked"]


def test_every_text_is_scored_once() -> None:
    calls: list[int] = []

    def counting(texts: Sequence[tuple[str, str]]) -> tuple[list[float], None]:
        calls.append(len(texts))
        return [1.0] * len(texts), None

    once = scored_once(counting, [("q", "a"), ("q", "b"), ("q", "a")])
    assert calls == [2] and once([("q", "b"), ("q", "a")]) == ([1.0, 1.0], None)
    items, pairs = degenerate_items(("final",)), principle_pairs(("final",))
    assert degenerate_report(oracle, project_goods()[:5], items)["n"] == len(items)
    assert pairs_report(oracle, pairs)["final"]["n"] == len(pairs)


def test_eval_judge_command_prints_kinds_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = subprocess.run([str(ZHUFU), "eval", "judge", "--split", "final", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    final = len(degenerate_items(("final",)))  # the hand-written split
    assert f"degenerate set: n={final}" in proc.stdout
    for kind in ("punctuation", "shuffled", "refusal", "taboo", "advertising", "generic"):
        assert kind in proc.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["judge"] == "offline" and report["degenerate"]["bad_share"] >= 0.99
    assert set(report["pairs"]) >= {"final"} and "tune" not in report["pairs"]
    bad = subprocess.run([str(ZHUFU), "eval", "judge", "--split", "nope"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "--split 'nope'" in bad.stderr
    missing = subprocess.run([str(ZHUFU), "eval", "judge", "--judge", str(tmp_path / "x.json")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "x.json" in missing.stderr


def test_the_guard_closes_a_length_scorers_holes_without_flipping_clean_pairs() -> None:
    from zhufu.pipeline.data import PreferencePair

    calls: list[int] = []

    def counting_length(texts: Sequence[tuple[str, str]]) -> tuple[list[float], None]:
        calls.append(len(texts))
        return length(texts)

    raw = cached(counting_length)
    guarded = guarded_scorer(raw, guard_floor(raw))
    held_out = [PreferencePair("生日祝福语", "祝你生日快乐，愿你每天都开开心心！", "生日快乐！"),
                PreferencePair("新年祝福语", "新年快乐！", "新年快乐新年快乐新年快乐新年快乐")]
    before = run_suite(raw, splits=("final",), held_out=held_out)
    after = run_suite(guarded, splits=("final",), held_out=held_out)
    assert before["degenerate"]["by_kind"]["written_twice"]["auc"] < 0.5
    assert after["degenerate"]["auc"] > before["degenerate"]["auc"]
    assert after["degenerate"]["by_kind"]["written_twice"]["auc"] == 1.0
    assert after["degenerate"]["good_median"] == before["degenerate"]["good_median"]
    h0, h1 = before["held_out_pairs"], after["held_out_pairs"]
    assert (h0["n"], h0["acc"], h1["acc"]) == (2, 0.5, 1.0)  # the repeated one is vetoed
    assert (h1["vetoed_chosen"], h1["vetoed_rejected"]) == (0, 1)
    assert guarded.vetoed > 0  # type: ignore[attr-defined]
    assert len(calls) == 2  # the floor's greetings, then the suite's other texts: once each
    assert "held-out preference pairs: n=2" in format_report(after)


def test_eval_judge_reports_a_reward_model_raw_and_guarded(tmp_path: Path) -> None:
    from zhufu.pipeline.data import PreferencePair
    from zhufu.pipeline.data.writers import write_pairs

    pairs = tmp_path / "pairs.json"
    write_pairs([PreferencePair("生日祝福语", f"祝你生日快乐，第{i}年也开开心心！", "快乐")
                 for i in range(10)], str(pairs))
    out = tmp_path / "rm.json"
    proc = subprocess.run([str(ZHUFU), "eval", "judge", "--judge", "rm:tiny-rm", "--split",
                           "final", "--held-out", str(pairs), "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "raw score" in proc.stdout and "as GRPO's rm reward" in proc.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["held_out_pairs"]["n"] == 2  # round(0.2 × 10) held out, as train-rm does
    assert report["guarded"]["degenerate"]["n"] == len(degenerate_items(("final",)))
    assert report["guarded"]["vetoed"] > 100
    assert report["guarded"]["degenerate"]["auc"] > 0.97
