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
    assert set(a["judge"]) == {"language_quality", "creativity", "emotional_resonance",
                               "cultural_appropriateness", "content_richness"}
    assert len(data["samples"]) == 12
    for sample in data["samples"]:
        assert set(sample) == {"query", "policy", "text", "score", "length"}
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

    prompts = tmp_path / "q.txt"
    prompts.write_text("给妈妈的生日祝福\n春节给老师的祝福语\n", encoding="utf-8")
    report = compare_policies({"sft": "tiny", "grpo-rm": "tiny", "grpo-judge": "tiny"},
                              prompts=str(prompts), bootstrap=20, max_tokens=16)
    assert [(p["a"], p["b"]) for p in report["pairwise"]] == [
        ("sft", "grpo-rm"), ("sft", "grpo-judge"), ("grpo-rm", "grpo-judge")]
    assert list(report["policies"]) == ["sft", "grpo-rm", "grpo-judge"]
    assert [x["policy"] for x in report["samples"]] == ["sft"] * 2 + ["grpo-rm"] * 2 + [
        "grpo-judge"] * 2
