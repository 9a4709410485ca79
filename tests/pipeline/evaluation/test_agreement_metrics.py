"""Agreement metrics on small sets whose answers were worked out by hand."""

from __future__ import annotations

import math

import pytest

from zhufu.pipeline.evaluation import metrics as M


def test_accuracy_and_kappa_hand_computed() -> None:
    # 6 of 8 agree; both raters say 1 half the time: p_e = 0.5, kappa = (0.75-0.5)/0.5
    t, p = [1, 1, 1, 0, 0, 0, 1, 0], [1, 1, 0, 0, 0, 1, 1, 0]
    assert M.accuracy(t, p) == 0.75
    assert M.cohen_kappa(t, p) == pytest.approx(0.5)
    # 7 of 10 agree; p(true=1)=0.4, p(pred=1)=0.5: p_e = 0.2+0.3 = 0.5, kappa = 0.4
    t = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    p = [1, 1, 1, 0, 0, 0, 0, 0, 1, 1]
    assert M.accuracy(t, p) == 0.7
    assert M.cohen_kappa(t, p) == pytest.approx(0.4)
    assert M.cohen_kappa([1, 1], [1, 1]) == 0.0  # p_e = 1: no information
    assert math.isnan(M.accuracy([], []))
    with pytest.raises(ValueError, match="length mismatch"):
        M.accuracy([1], [1, 0])


def test_auc_with_ties() -> None:
    assert M.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert M.auc([1.0, 1.0], [1, 0]) == 0.5
    assert math.isnan(M.auc([1.0, 2.0], [1, 1]))


def test_best_length_rule_both_directions() -> None:
    lengths = [10, 20, 30, 40, 50, 60]
    rule = M.best_length_rule(lengths, [0, 0, 1, 0, 1, 1])
    assert rule.accuracy == pytest.approx(5 / 6) and rule.direction == "longer"
    assert M.accuracy([0, 0, 1, 0, 1, 1], rule.predict(lengths)) == pytest.approx(5 / 6)
    rule = M.best_length_rule(lengths, [1, 1, 0, 1, 0, 0])
    assert rule.accuracy == pytest.approx(5 / 6) and rule.direction == "shorter"
    perfect = M.best_length_rule([5, 5, 9, 9], [0, 0, 1, 1])
    assert perfect.accuracy == 1.0 and perfect.threshold == 9


def test_bands_pairs_and_near_same_length() -> None:
    lengths = [10, 35, 45, 60, 100]
    bands = M.band_accuracy(lengths, [1, 1, 0, 1, 0], [1, 0, 0, 1, 1])
    assert bands == {"<30": {"n": 1, "accuracy": 1.0}, "30-50": {"n": 2, "accuracy": 0.5},
                     "50-80": {"n": 1, "accuracy": 1.0}, ">=80": {"n": 1, "accuracy": 0.0}}
    assert M.band_of(30) == "30-50" and M.band_of(29) == "<30" and M.band_of(80) == ">=80"
    assert M.pair_accuracy([3, 2, 1], [1, 2, 3]) == pytest.approx(0.5)
    assert M.near_same_length([100, 100, 10], [86, 84, 9]) == [True, False, True]
