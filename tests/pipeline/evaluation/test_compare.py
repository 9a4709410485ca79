"""Policy comparison: preferences, the length-controlled win rate, intervals, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zhufu.pipeline.evaluation.compare import bootstrap_ci, lc_win_rate, preferences


def test_preferences_count_ties_as_half() -> None:
    assert preferences([1, 2, 3], [2, 2, 1]).tolist() == [1.0, 0.5, 0.0]


def test_lc_win_rate_discounts_a_win_that_is_only_length() -> None:
    rng = np.random.default_rng(0)
    diff = rng.normal(0, 20, 400)
    prefs = (diff > 0).astype(float)  # B wins exactly when it is longer
    prefs[diff > 0] = np.where(rng.random((diff > 0).sum()) < 0.9, 1.0, 0.0)
    raw = prefs.mean()
    lc = lc_win_rate(prefs, diff)
    assert abs(lc - 0.5) < abs(raw - 0.5) or abs(lc - 0.5) < 0.15
    # a win that holds at every length stays a win
    always = np.ones(50)
    always[:5] = 0.0
    assert lc_win_rate(always, rng.normal(0, 5, 50)) > 0.8


def test_bootstrap_interval_contains_the_estimate() -> None:
    rng = np.random.default_rng(1)
    prefs = (rng.random(200) < 0.7).astype(float)
    diff = rng.normal(0, 10, 200)
    ci = bootstrap_ci(prefs, diff, rounds=200)
    lo, hi = ci["win_rate"]
    assert lo < prefs.mean() < hi and hi - lo < 0.2


def test_bootstrap_resamples_whole_prompts() -> None:
    """Four identical samples per prompt carry one prompt's evidence, not four."""
    rng = np.random.default_rng(2)
    per_prompt = (rng.random(30) < 0.6).astype(float)
    prefs, diff = np.repeat(per_prompt, 4), np.zeros(120)
    clustered = bootstrap_ci(prefs, diff, 300, groups=np.repeat(np.arange(30), 4))["win_rate"]
    naive = bootstrap_ci(prefs, diff, 300)["win_rate"]
    assert clustered[1] - clustered[0] > 1.5 * (naive[1] - naive[0])


def test_compare_cli_tiny_against_itself(tmp_path: Path) -> None:
    """Same policy, same seed: identical answers, so a 0.5 win rate with no length gap."""
    zhufu = Path(sys.executable).parent / "zhufu"
    report = tmp_path / "cmp.json"
    env = {"ZHUFU_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(zhufu), "eval", "compare", "--a", "tiny", "--b", "tiny",
                           "--max-prompts", "3", "--samples-per-prompt", "2", "--bootstrap", "50",
                           "--report", str(report)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["n_prompts"] == 3 and data["samples_per_prompt"] == 2
    assert list(data["policies"]) == ["a", "b"]
    (pair,) = data["pairwise"]
    assert (pair["a"], pair["b"], pair["win_rate"]) == ("a", "b", 0.5)
    assert set(pair["ci95"]) == {"win_rate", "lc_win_rate"}
    a, b = data["policies"]["a"], data["policies"]["b"]
    assert a["mean_length"] == b["mean_length"] and a["samples"] == 6
    assert a["readable_share"] == b["readable_share"] and 0 <= a["readable_share"] <= 1
    assert a["wrong_occasion_share"] == b["wrong_occasion_share"]
    assert 0 <= a["wrong_occasion_share"] <= 1 and 0 <= a["occasion_samples"] <= 6
    assert a["repeated_closing"] == b["repeated_closing"]
    assert 0 <= a["repeated_closing"]["share"] <= 1 and a["repeated_closing"]["queries"] <= 3
    assert set(a["judge"]) == {"language_quality", "creativity", "emotional_resonance",
                               "cultural_appropriateness", "content_richness"}
    assert len(data["samples"]) == 12
    for sample in data["samples"]:
        assert set(sample) == {"query", "policy", "text", "score", "length", "scores"}
        assert sample["scores"]["judge"] == sample["score"]
        assert sample["length"] == len(sample["text"]) and 1 <= sample["score"] <= 5
    assert [x["text"] for x in data["samples"] if x["policy"] == "a"] == [
        x["text"] for x in data["samples"] if x["policy"] == "b"]
    assert report.with_suffix(".png").is_file()


def test_compare_policies_refuses_a_single_policy() -> None:
    from zhufu.pipeline.evaluation.compare import compare_policies

    with pytest.raises(ValueError, match="at least two policies"):
        compare_policies({"sft": "tiny"})


def test_compare_policies_pairs_every_policy_with_every_later_one(zhufu_home: Path,
                                                                   tmp_path: Path) -> None:
    """Three policies: the baseline against each, then the other two; every sample kept."""
    from zhufu.pipeline.evaluation.compare import compare_policies
    from zhufu.pipeline.evaluation.evaluators import Evaluator

    prompts = tmp_path / "q.txt"
    prompts.write_text("给妈妈的生日祝福\n春节给老师的祝福语\n", encoding="utf-8")
    length = Evaluator(lambda queries, texts: [float(len(t)) for t in texts], {"kind": "len"})
    report = compare_policies({"sft": "tiny", "grpo-rm": "tiny", "grpo-judge": "tiny"},
                              prompts=str(prompts), bootstrap=20, max_tokens=16,
                              evaluators={"length": length})
    assert [(p["a"], p["b"]) for p in report["pairwise"]] == [
        ("sft", "grpo-rm"), ("sft", "grpo-judge"), ("grpo-rm", "grpo-judge")]
    for pair in report["pairwise"]:
        assert list(pair["by_evaluator"]) == ["judge", "length"]
        assert pair["by_evaluator"]["judge"]["win_rate"] == pair["win_rate"]
    assert report["evaluators"]["length"]["kind"] == "len"
    assert report["evaluators"]["length"]["means"]["sft"] == np.mean(
        [len(x["text"]) for x in report["samples"] if x["policy"] == "sft"])
    assert report["policies"]["grpo-rm"]["evaluators"]["length"] == report["evaluators"][
        "length"]["means"]["grpo-rm"]
    assert list(report["policies"]) == ["sft", "grpo-rm", "grpo-judge"]
    assert [x["policy"] for x in report["samples"]] == ["sft"] * 2 + ["grpo-rm"] * 2 + [
        "grpo-judge"] * 2


def test_lc_win_rate_matches_scikit_learns_logistic_regression() -> None:
    """The Newton fit solves the problem scikit-learn's (L2, C = 10) does."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    for _ in range(40):
        n = int(rng.integers(6, 150))
        diff = rng.normal(0, 10, n)
        prefs = rng.choice([0.0, 0.5, 1.0], n, p=rng.dirichlet([1, 1, 1]))
        if prefs.min() == prefs.max():
            continue
        x = np.tanh(diff / np.std(diff)).reshape(-1, 1)
        ws = np.concatenate([prefs, 1 - prefs])
        keep = ws > 0
        model = LogisticRegression(C=10.0, tol=1e-8, max_iter=1000).fit(
            np.vstack([x, x])[keep], np.r_[np.ones(n), np.zeros(n)][keep],
            sample_weight=ws[keep])
        expected = 1 / (1 + np.exp(-model.intercept_[0]))
        assert abs(lc_win_rate(prefs, diff) - expected) < 1e-4


def test_a_preference_is_clear_only_when_every_interval_excludes_a_tie() -> None:
    from zhufu.pipeline.evaluation.compare import _clear_winner

    def pair(a: str, b: str, lo: float, hi: float) -> dict:
        return {"a": a, "b": b, "by_evaluator": {"rm": {"ci95": {"win_rate": [lo, hi]}}}}

    pairs = [pair("sft", "grpo-rm", 0.55, 0.7), pair("sft", "grpo-judge", 0.4, 0.6),
             pair("grpo-rm", "grpo-judge", 0.2, 0.45)]
    assert _clear_winner(pairs, "rm", "grpo-rm")  # beats sft (b side) and grpo-judge (a side)
    pairs[0] = pair("sft", "grpo-rm", 0.45, 0.7)
    assert not _clear_winner(pairs, "rm", "grpo-rm")
