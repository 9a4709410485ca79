"""``zhufu run``'s bookkeeping: what a stage's result leaves for the report and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhufu.pipeline.errors import ConfigError
from zhufu.pipeline.results import StageResult
from zhufu.pipeline.run import (
    RunSettings,
    RunState,
    _figures,
    _record,
    parse_rewards,
    plan,
)
from zhufu.pipeline.run_summary import pairwise_metrics, summary_rows


@pytest.mark.parametrize("name", ["grpo", "grpo-judge"])
def test_grpo_keeps_the_readable_share_for_the_report_and_its_line(tmp_path: Path,
                                                                   name: str) -> None:
    state = RunState(work=tmp_path)
    (step,) = [s for s in plan(RunSettings(rewards=("rm", "judge") if "-" in name
                                           else ("judge",))) if s.name == name]
    _record(state, step, StageResult(stage="grpo", registered={"zhufu-policy": "7"}, metrics={
        "steps": 30.0, "train_loss": 0.1, "readable_share/first": 0.9,
        "readable_share/last": 0.95, "readable_share/min": 0.8,
        "readable_share/warnings": 0.0, "wrong_occasion_share/first": 0.34,
        "wrong_occasion_share/last": 0.12}))
    assert state.metrics[f"{name}/readable_share/min"] == 0.8
    assert f"{name}/train_loss" not in state.metrics
    assert state.policies == {name: "models:/zhufu-policy/7"}
    line = _figures(name, state, "grpo")
    assert "30 steps" in line and "90% → 95%" in line and "lowest 80%" in line
    assert "wrong occasion 34% → 12%" in line


def test_reward_list_parses_in_order_and_names_what_is_wrong() -> None:
    assert parse_rewards("judge") == ("judge",)
    assert parse_rewards("rm,judge") == ("rm", "judge")
    with pytest.raises(ConfigError, match="expected judge, rm or mix, got 'both'"):
        parse_rewards("rm,both")
    with pytest.raises(ConfigError, match="at most once"):
        parse_rewards("rm,rm")


def test_one_grpo_run_per_reward_from_the_same_sft_policy(tmp_path: Path) -> None:
    """rm,judge: two GRPO steps after the shared ones; same policy, prompts, steps and seed,
    each with its reward, its own checkpoints and alias. One reward keeps ``grpo``."""
    assert [s.name for s in plan(RunSettings())][-1] == "grpo"
    s = RunSettings(rewards=("rm", "judge"), grpo_steps=7, seed=3)
    steps = plan(s)
    assert [x.name for x in steps] == ["sft", "curate", "train-rm", "judge-train",
                                       "grpo-rm", "grpo-judge"]
    state = RunState(work=tmp_path, outputs={
        "sft_policy": "models:/zhufu-policy@sft", "train_queries": "q.txt",
        "judge": "models:/zhufu-judge/2", "reward_model": "models:/zhufu-reward/5"})
    rm, judge = (x.config(state, s) for x in steps[-2:])
    assert [r.name for r in rm.rewards][0] == "rm" and rm.rewards[0].model.endswith("/5")
    assert [r.name for r in judge.rewards][0] == "judge"
    assert (rm.alias, judge.alias) == ("grpo-rm", "grpo-judge")
    assert rm.checkpoint_dir != judge.checkpoint_dir
    for field in ("policy", "prompts", "max_steps", "seed", "learning_rate", "batch_size"):
        assert getattr(rm, field) == getattr(judge, field), field
    assert rm.max_steps == 7 and rm.seed == 3


def test_pairwise_metrics_name_every_pair() -> None:
    report = {"pairwise": [{"a": "sft", "b": "grpo-rm", "win_rate": 0.6, "lc_win_rate": 0.55},
                           {"a": "grpo-rm", "b": "grpo-judge", "win_rate": 0.4,
                            "lc_win_rate": 0.45}]}
    metrics = pairwise_metrics(report)
    assert metrics["win_rate"] == 0.6 and metrics["win_rate/grpo-judge_vs_grpo-rm"] == 0.4
    assert metrics["lc_win_rate/grpo-rm_vs_sft"] == 0.55


def test_summary_rows_one_column_per_policy() -> None:
    dims = {"language_quality": 4.0, "creativity": 3.0}
    report = {"policies": {
        "sft": {"judge_overall": 3.5, "judge": dims, "mean_length": 36.0, "readable_share": 0.96},
        "grpo": {"judge_overall": 3.7, "judge": dims, "mean_length": 35.0,
                 "readable_share": 0.97}}}
    rows = summary_rows(report)
    assert rows[0] == ("judge overall (1–5)", "3.50", "3.70")
    assert ("readable share", "96%", "97%") in rows and all(len(r) == 3 for r in rows)
    assert not any(r[0] == "wrong occasion" for r in rows)  # an older report: no such row
    report["policies"]["sft"]["wrong_occasion_share"] = 0.3
    report["policies"]["grpo"]["wrong_occasion_share"] = 0.125
    assert ("wrong occasion", "30%", "12%") in summary_rows(report)
    report["policies"]["sft"]["repeated_closing"] = {"line": "a", "queries": 4, "share": 0.04}
    report["policies"]["grpo"]["repeated_closing"] = {"line": "b", "queries": 16, "share": 0.14}
    assert ("most repeated closing line", "4% (4 queries)", "14% (16 queries)"
            ) in summary_rows(report)



def test_reward_costs_add_up_what_each_reward_took(tmp_path: Path) -> None:
    from zhufu.pipeline.run import reward_costs
    from zhufu.pipeline.run_summary import cost_rows

    state = RunState(work=tmp_path, seconds={"curate": 10.0, "train-rm": 5.0,
                                             "judge-train": 2.0}, metrics={
        "curate/calls": 300.0, "curate/tokens_prompt": 1000.0, "curate/tokens_completion": 50.0,
        "data/curation_labelled": 80, "data/curation_exemplars": 155,
        "judge/train_rows": 70.0, "judge/dev_rows": 17.0, "judge/llm_calls": 4.0,
        "judge/llm_prompt_tokens": 30.0, "judge/llm_completion_tokens": 3.0})
    costs = reward_costs(state)
    assert (costs["rm"]["wall_seconds"], costs["rm"]["llm_calls"], costs["rm"]["llm_tokens"],
            costs["rm"]["human_labelled"]) == (15.0, 300.0, 1050.0, 235)
    assert (costs["judge"]["wall_seconds"], costs["judge"]["llm_tokens"],
            costs["judge"]["human_labelled"]) == (2.0, 33.0, 87.0)
    costs["judge"]["grpo_seconds"] = 40.0
    rows = cost_rows({"reward_costs": costs})
    assert rows == [("rm", "15", "300", "1050", "235", "—"), ("judge", "2", "4", "33", "87", "40")]


def test_evaluator_rows_mark_the_preferred_policy_and_its_own_reward() -> None:
    from zhufu.pipeline.run_summary import evaluator_rows

    report = {"policies": {"sft": {}, "grpo-rm": {}, "grpo-judge": {}}, "evaluators": {
        "judge": {"means": {"sft": 3.5, "grpo-rm": 3.4, "grpo-judge": 3.9},
                  "prefers": "grpo-judge", "prefers_clearly": True,
                  "trained_against": ["grpo-judge"]},
        "independent": {"means": {"sft": 0.2, "grpo-rm": 0.4, "grpo-judge": 0.1},
                        "prefers": "grpo-rm", "trained_against": []}}}
    assert evaluator_rows(report) == [
        ("by judge (reward of grpo-judge)", "3.500", "3.400", "3.900 **"),
        ("by independent (no policy trained on it)", "0.200", "0.400 *", "0.100")]


def test_grpo_queries_add_generated_training_queries_only() -> None:
    from zhufu.pipeline.data.rows import PROMPT_PREFIX
    from zhufu.pipeline.run import RunSettings, grpo_queries, sft_rows

    s = RunSettings(sft_generated=300, held_out_generated=10, grpo_generated_queries=40)
    rows, train, held = sft_rows(s)
    queries = grpo_queries(s, train)
    assert queries[:len(train)] == train and len(queries) == len(train) + 40
    assert len(set(queries)) == len(queries) and not set(queries) & set(held)
    trained = {r.instruction.removeprefix(PROMPT_PREFIX) for r in rows}
    assert set(queries[len(train):]) <= trained
    assert grpo_queries(s, train) == queries  # seeded
    assert grpo_queries(RunSettings(grpo_generated_queries=0), train) == train


def test_the_run_takes_two_torch_threads_only_on_an_idle_machine() -> None:
    from zhufu.pipeline.run import IDLE_LOAD, RunSettings, run_threads

    assert run_threads(RunSettings(), load=0.3, cores=2) == 2
    assert run_threads(RunSettings(), load=IDLE_LOAD, cores=2) == 1  # busy: one thread
    assert run_threads(RunSettings(), load=0.0, cores=1) == 1
    assert run_threads(RunSettings(), load=0.0, cores=64) == 2  # tiny models gain no more
    assert run_threads(RunSettings(torch_threads=1), load=0.0, cores=2) == 1
    assert run_threads(RunSettings(torch_threads=0), load=5.0, cores=2) == 0  # torch's own
