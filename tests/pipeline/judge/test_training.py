"""Judge training: rule caps, learning over rounds, an LLM that answers garbage, and the
MLflow round trip (a real local sqlite store under a tmp ZHUFU_HOME).

The garbage LLM is a test double (a ChatBackend subclass answering canned junk): no real
LLM can run here, and the point is that every agent's unreadable reply is counted.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from zhufu.pipeline.config import JudgeTrainConfig
from zhufu.pipeline.data import load_pairs, starter_labelled
from zhufu.pipeline.judge import load_judge
from zhufu.pipeline.judge.rounds import TrainingData, split_groups
from zhufu.pipeline.judge.training import train_loop
from zhufu.pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse
from zhufu.pipeline.llm.offline import OfflineBackend


class GarbageLLM(ChatBackend):
    """Answers every request with text that holds no JSON object."""

    name = "garbage"

    def __init__(self) -> None:
        super().__init__(concurrency=4)
        self.kinds: list[str] = []

    async def _chat(self, request: ChatRequest) -> ChatResponse:
        self.kinds.append((request.task or {}).get("kind", "?"))
        return ChatResponse(text="Sure! Here you go: 🎉 (no JSON, sorry)")


@pytest.fixture(scope="module")
def small_data(shared_data: Path) -> TrainingData:
    """Starter examples plus 160 of the paper's pairs (both sides), split by group."""
    pairs = load_pairs(shared_data / "reward_data_train.json")
    pick = random.Random(3).sample(pairs, 160)
    from zhufu.pipeline.judge.rounds import _pair_rows

    groups = [[r] for r in starter_labelled()] + [_pair_rows(p) for p in pick]
    train, dev, test = split_groups(groups, 0.3, 0.0, seed=1)
    return TrainingData(train, dev, test)


def _cfg(**kw: object) -> JudgeTrainConfig:
    base = {"rounds": 3, "batch_size": 16, "max_rules": 3, "steps_per_round": 60,
            "start": "hand-set", "anchor": 0.002}
    return JudgeTrainConfig(**{**base, **kw})


def test_rule_caps_respected_every_round(small_data: TrainingData) -> None:
    seen: list[tuple[int, int, int]] = []

    def on_round(entry, state) -> None:  # noqa: ANN001 - RoundLog, JudgeState
        seen.append((len(state.weights.rules), len(state.rules), len(entry.generator)))

    out = asyncio.run(train_loop(_cfg(rounds=4), small_data, OfflineBackend(), on_round))
    assert len(seen) == 5  # round 0 + 4 rounds
    assert all(a <= 3 and b <= 3 and c <= 3 for a, b, c in seen)
    assert max(a for a, _, _ in seen) == 3  # the cap was reached, not just never approached
    assert len(out.state.weights.rules) <= 3 and len(out.generator.strategies) <= 3
    # every mined rule is readable: short phrases, a note with its evidence counts
    for rule in out.state.weights.rules:
        assert all(1 < len(p) <= 4 for p in rule.pattern.split("|"))
        assert "好" in rule.note and "差" in rule.note
    assert all(h.adversarial > 0 for h in out.rounds[1:])
    assert all(h.n_rules <= 3 for h in out.rounds) and out.rounds[-1].metrics()["n_rules"] == 3


def test_dev_accuracy_rises_over_rounds(small_data: TrainingData) -> None:
    out = asyncio.run(train_loop(_cfg(max_rules=10), small_data, OfflineBackend()))
    accs = [h.dev["acc"] for h in out.rounds]
    assert accs[out.best_round] == max(accs)
    assert max(accs[1:]) > accs[0] + 0.03, accs
    assert out.state.metadata["best_round"] == out.best_round
    # the kept state is the best round's: it scores the dev set at the logged accuracy
    from zhufu.pipeline.judge.rounds import evaluate_split

    assert evaluate_split(out.state.weights, small_data.dev)["acc"] == pytest.approx(max(accs))


def test_rules_come_only_from_mineable_text_and_principles_stay(
        small_data: TrainingData) -> None:
    """mine_from=labelled: every phrase of every mined rule occurs in the text allowed to
    ship (the project's own rows), none only in the paper's pairs; training never switches a
    principle veto off, never touches the readability gate or the caps, and starting from
    the shipped judge keeps what it knows about degenerate text."""
    from zhufu.pipeline.analysis import analyse
    from zhufu.pipeline.judge.optimiser import PRINCIPLE_VETOES, VETO_OFF
    from zhufu.pipeline.judge.rounds import tune_set_rows

    own_rows = [*starter_labelled(), *tune_set_rows()]
    data = TrainingData(small_data.train_rows + own_rows, small_data.dev_rows, [])
    data.mineable = {(r.query, r.response) for r in own_rows}
    out = asyncio.run(train_loop(_cfg(max_rules=10, mine_from="labelled", rounds=1), data,
                                 OfflineBackend()))
    shippable = "\n".join(r.response for r in own_rows)
    assert out.state.weights.rules  # the check below is not vacuous
    for rule in out.state.weights.rules:
        for phrase in rule.pattern.replace("\\", "").split("|"):
            assert phrase in shippable, (phrase, rule.note)
    none_out = asyncio.run(train_loop(_cfg(mine_from="none", rounds=1), data,
                                      OfflineBackend()))
    assert none_out.state.weights.rules == []
    from_shipped = asyncio.run(train_loop(_cfg(start="default", rounds=1), small_data,
                                          OfflineBackend()))
    for w in (out.state.weights, from_shipped.state.weights):
        assert all(w.veto[v] < VETO_OFF for v in PRINCIPLE_VETOES if v in w.veto)
        assert w.caps["taboo"] == {"cultural_appropriateness": 1.5}
        for text in ("。", "，，，，", "生日快乐生日快乐生日快乐生日快乐"):
            a = analyse("生日祝福语", text, w)
            assert a.verdict == "bad" and a.overall == 1.0


def test_anchor_keeps_a_judge_near_where_it_started(small_data: TrainingData) -> None:
    """The same optimiser steps from the shipped judge move its weights less with a strong
    anchor (how zhufu run keeps a judge trained on the small starter set near the shipped
    one), and training passes ``anchor`` to the optimiser."""
    import copy
    import inspect

    from zhufu.pipeline.judge import training
    from zhufu.pipeline.judge.judge import default_state
    from zhufu.pipeline.judge.optimiser import fit_weights

    start = default_state().weights

    def moved(anchor: float) -> float:
        w = copy.deepcopy(start)
        fit_weights(w, small_data.train, steps=150, lr=0.05, l2=anchor)
        return sum(abs(w.weights[d].get(f, 0.0) - v) for d in start.weights
                   for f, v in start.weights[d].items()) + abs(w.threshold - start.threshold)

    loose, tight = moved(0.002), moved(1.0)
    assert loose > 0.5 and tight < 0.5 * loose, (loose, tight)
    assert "l2=cfg.anchor" in inspect.getsource(training.train_loop)


def test_length_cap_bounds_every_length_weight(small_data: TrainingData) -> None:
    from zhufu.pipeline.judge.optimiser import LENGTH_FEATURES

    out = asyncio.run(train_loop(_cfg(length_cap=0.2, rounds=2, steps_per_round=200,
                                      learning_rate=0.1), small_data, OfflineBackend()))
    weights = out.state.weights.weights
    capped = [w for d in weights.values() for f, w in d.items() if f in LENGTH_FEATURES]
    assert capped and all(abs(w) <= 0.2 + 1e-9 for w in capped)


def test_garbage_llm_round_completes_with_counted_failures() -> None:
    rows = starter_labelled()
    data = TrainingData(rows[:60], rows[60:80], [], with_features=False)
    llm = GarbageLLM()
    out = asyncio.run(train_loop(_cfg(rounds=1, batch_size=6), data, llm))
    assert len(out.rounds) == 2
    assert out.failures["generator"] == 6  # no adversarial greeting could be read
    assert out.failures["judge"] > 0  # every verdict unreadable -> neutral "bad"
    assert out.rounds[1].adversarial == 0
    # the judge answered "bad" to everything, so the good known examples were misjudged,
    # the reflector was asked about them and its garbage was counted
    assert out.rounds[1].misjudged > 0 and out.failures["reflector"] == out.rounds[1].misjudged
    assert out.rounds[1].reflections == 0
    assert {"judge_adversary", "judge", "judge_reflect"} <= set(llm.kinds)


def test_llm_path_with_offline_agents_rewrites_text_rules() -> None:
    """The LLM code path (prompts + JSON contracts) run by the offline handlers: the
    optimiser's text standard changes and stays capped."""
    rows = starter_labelled()
    data = TrainingData(rows[:40], rows[40:60], [], with_features=False)

    class ViaMessages(OfflineBackend):
        name = "offline-agents"  # not "offline": the loop takes its LLM path

    out = asyncio.run(train_loop(_cfg(rounds=2, batch_size=4, max_rules=2), data,
                                 ViaMessages()))
    assert out.failures == {"generator": 0, "reflector": 0, "optimiser": 0, "judge": 0}
    assert all(len(h.rules) <= 2 for h in out.rounds)
    assert out.rounds[1].added and out.rounds[1].reflections > 0


def test_trained_judge_registers_and_reloads_from_mlflow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path) -> None:
    monkeypatch.setenv("ZHUFU_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    pairs = json.loads((shared_data / "reward_data_train.json").read_text(encoding="utf-8"))
    small = tmp_path / "pairs.json"
    small.write_text(json.dumps(pairs[:40], ensure_ascii=False), encoding="utf-8")
    from zhufu.pipeline import stage_runner

    cfg = _cfg(rounds=1, pairs=str(small), register_as="zhufu-judge-test",
               output_dir=str(tmp_path / "out"), experiment="judge-test")
    result = stage_runner.run("judge-train", cfg)
    version = result.registered["zhufu-judge-test"]
    assert result.metrics["judge_path_mismatches"] == 0
    assert "dev_acc_best" in result.metrics and "fooled_rate_first" in result.metrics
    pairs_to_score = [(ex.query, ex.response) for ex in starter_labelled()[:8]]
    local = load_judge(result.outputs["model"])  # the folder holding judge.json
    remote = load_judge(f"models:/zhufu-judge-test/{version}")
    by_run = load_judge(f"runs:/{result.mlflow_run_id}/judge")
    assert remote.state.to_dict() == local.state.to_dict() == by_run.state.to_dict()

    async def both() -> tuple[list, list]:
        return (await local.score_many(pairs_to_score), await remote.score_many(pairs_to_score))

    a, b = asyncio.run(both())
    assert [(r.overall, r.verdict, r.reason) for r in a] == [
        (r.overall, r.verdict, r.reason) for r in b]
    from zhufu.pipeline.judge import JudgeSpecError

    with pytest.raises(JudgeSpecError, match="zhufu-judge-test/99"):
        load_judge("models:/zhufu-judge-test/99")


def test_split_keeps_pairs_together_and_is_seeded() -> None:
    from zhufu.pipeline.data.rows import LabelledExample

    groups = [[LabelledExample(f"q{i}", f"好{i}", 1), LabelledExample(f"q{i}", f"差{i}", 0)]
              for i in range(100)]
    train, dev, test = split_groups(groups, 0.1, 0.2, seed=5)
    assert (len(train), len(dev), len(test)) == (140, 20, 40)
    for part in (train, dev, test):
        ids = {r.query for r in part}
        assert len(part) == 2 * len(ids)  # both sides of every pair on the same side
    assert split_groups(groups, 0.1, 0.2, seed=5) == (train, dev, test)
    assert split_groups(groups, 0.1, 0.2, seed=6) != (train, dev, test)
    with pytest.raises(ValueError, match="too small"):
        split_groups(groups[:2], 0.5, 0.5, seed=0)
