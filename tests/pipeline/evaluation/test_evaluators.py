"""The comparison's independent evaluator: fitted only on data no reward trains on."""

from __future__ import annotations

from zhufu.pipeline.evaluation.evaluators import UNSEEN_SPLITS, _pairs, held_out_evaluator
from zhufu.pipeline.judge.testsets import degenerate_items, principle_pairs


def test_held_out_evaluator_sees_no_tune_split_text() -> None:
    tune = {p.good for p in principle_pairs(("tune",))} | {p.bad for p in principle_pairs(
        ("tune",))} | {d.response for d in degenerate_items(("tune",))}
    for split in UNSEEN_SPLITS:
        for chosen, rejected in _pairs(split).values():
            assert not (set(chosen) | set(rejected)) & tune


def test_held_out_evaluator_says_how_far_to_trust_it() -> None:
    """Its size and its accuracy across the two splits (each fitted on one, tested on the
    other) are in ``about``; it ranks a good greeting above punctuation soup and an advert."""
    evaluator = held_out_evaluator()
    about = evaluator.about
    assert about["pairs"] == {part: sum(len(_pairs(s)[part][0]) for s in UNSEEN_SPLITS)
                              for part in ("principle", "degenerate")}
    assert about["pairs"]["principle"] >= 150 and about["pairs"]["degenerate"] >= 200
    for figures in about["pair_accuracy_across_splits"].values():
        assert set(figures) == {"principle", "degenerate"}
        assert all(0.6 < v <= 1 for v in figures.values()), figures
    good, soup, advert = evaluator.score(["给妈妈的生日祝福"] * 3, [
        "亲爱的妈妈，生日快乐！愿您身体健康，笑口常开，每天都被温柔相待。",
        "快乐，，。。祝！！生日，，",
        "妈妈生日快乐！点击链接领取优惠券，蛋糕限时五折，下单立减二十元！"])
    assert good > soup and good > advert
