"""The shipped default judge (trained by examples/judge.yaml): it is what ``load_judge()``
and ``zhufu judge score`` use, it explains every verdict per dimension, on a sample of the
recipe's held-out test split (never trained on) it beats the best length rule fitted on the
recipe's train split, it holds no text from the paper, and it meets issue 12's aims on the
project's own test sets.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from zhufu.pipeline.analysis.text import char_length
from zhufu.pipeline.config import JudgeTrainConfig, load_config
from zhufu.pipeline.data import load_pairs, starter_labelled
from zhufu.pipeline.evaluation.metrics import accuracy, best_length_rule
from zhufu.pipeline.judge import JudgeState, load_judge
from zhufu.pipeline.judge.judge import DEFAULT_JUDGE_FILE
from zhufu.pipeline.judge.result import DIMENSION_KEYS
from zhufu.pipeline.judge.rounds import _pair_rows, split_groups

REPO = Path(__file__).resolve().parents[3]


def test_default_judge_is_the_shipped_trained_state() -> None:
    assert DEFAULT_JUDGE_FILE.is_file()
    shipped = JudgeState.load(DEFAULT_JUDGE_FILE)
    judge = load_judge()
    assert judge.state.to_dict() == shipped.to_dict() == load_judge("offline").state.to_dict()
    assert JudgeState().weights.to_dict() == shipped.weights.to_dict()
    w = shipped.weights
    assert 0 < len(w.rules) <= 10 and len(shipped.rules) <= 10
    for rule in w.rules:  # inspectable: short phrases, a note with the evidence counts
        assert all(1 < len(p) <= 4 for p in rule.pattern.split("|"))
        assert "好" in rule.note and "差" in rule.note
    assert shipped.metadata["best_round"] >= 1  # the rounds improved on the hand-set start


@pytest.fixture(scope="module")
def held_out(shared_data: Path) -> tuple[list, list]:
    """(train rows, 300 test rows) of the recipe's own split."""
    cfg = load_config(JudgeTrainConfig, REPO / "examples" / "judge.yaml", [])
    groups = [[r] for r in starter_labelled()]
    groups += [_pair_rows(p) for p in load_pairs(shared_data / "reward_data_train.json")]
    train, _dev, test = split_groups(groups, cfg.dev_fraction, cfg.test_fraction, cfg.seed)
    return train, random.Random(0).sample(test, 300)


def test_default_judge_beats_the_length_rule_on_held_out_rows(held_out) -> None:  # noqa: ANN001
    train, sample = held_out
    rule = best_length_rule([char_length(r.response) for r in train], [r.label for r in train])
    labels = [r.label for r in sample]
    length_acc = accuracy(labels, rule.predict([char_length(r.response) for r in sample]))
    judge = load_judge()
    results = asyncio.run(judge.score_many([(r.query, r.response) for r in sample]))
    judge_acc = accuracy(labels, [r.label for r in results])
    assert judge.failures == 0
    assert judge_acc >= 0.9 and judge_acc > length_acc + 0.03, (judge_acc, length_acc)
    band = [i for i, r in enumerate(sample) if 30 <= char_length(r.response) < 50]
    band_judge = accuracy([labels[i] for i in band], [results[i].label for i in band])
    band_len = accuracy([labels[i] for i in band],
                        rule.predict([char_length(sample[i].response) for i in band]))
    assert band_judge > band_len, (band_judge, band_len)
    # every verdict is explained, dimension by dimension
    for res in results[:20]:
        assert set(res.scores) == set(DIMENSION_KEYS) and res.reason
        assert set(res.reasons) == set(DIMENSION_KEYS)


def test_shipped_rules_hold_only_the_projects_own_text() -> None:
    """The shipped judge's phrase rules were mined from the project's own text (starter set,
    the tune split of its test sets), so the package carries no text from the paper."""
    from zhufu.pipeline.judge.rounds import tune_set_rows

    own = "\n".join(r.response for r in (*starter_labelled(), *tune_set_rows()))
    shipped = JudgeState.load(DEFAULT_JUDGE_FILE).weights
    assert shipped.rules
    for rule in shipped.rules:
        for phrase in rule.pattern.replace("\\", "").split("|"):
            assert phrase in own, (phrase, rule.note)


def test_default_judge_on_its_test_sets() -> None:
    """Issue 12's aims for the shipped judge, on the project's own test sets: degenerate
    answers all labelled bad and ranked below good greetings; on the held-out third of the
    principle pairs the good greeting ranks higher in >= 92 % and labels are right in >= 88 %;
    degenerate text scores 1 on every dimension."""
    from zhufu.pipeline.evaluation.judge_suite import judge_scorer, run_suite

    report = run_suite(judge_scorer())
    deg, pairs = report["degenerate"], report["pairs"]
    assert deg["bad_share"] >= 0.99 and deg["auc"] >= 0.995, deg["highest"]
    assert pairs["held_out"]["pair_acc"] >= 0.92 and pairs["held_out"]["label_acc"] >= 0.88
    assert pairs["final"]["pair_acc"] >= 0.92, pairs["misranked"]
    res = asyncio.run(load_judge().score_many([("生日祝福语", "。"), ("生日祝福语", "，，，，")]))
    assert all(r.overall == 1.0 and set(r.scores.values()) == {1.0} for r in res)
