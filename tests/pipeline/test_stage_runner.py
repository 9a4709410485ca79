"""The stage table and its wrapper without training: commands generated from the table,
kinds' steps, merged results, and what ranks other than 0 may not do (track, report)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main

from zhufu.pipeline import stage_runner, tracking
from zhufu.pipeline.cli import app
from zhufu.pipeline.config import CurateConfig, SFTConfig
from zhufu.pipeline.errors import ConfigError
from zhufu.pipeline.results import RESULT_FILE_ENV, StageResult, emit
from zhufu.pipeline.stages import KINDS, STAGES, Step, resolve, steps_of


def _command(path: tuple[str, ...]) -> object:
    node = typer.main.get_command(app)
    for part in path:
        node = node.commands[part]  # type: ignore[attr-defined]
    return node


def test_every_stage_has_its_command_from_the_table() -> None:
    for stage in STAGES.values():
        command = _command(stage.command)
        assert command.help == stage.help, stage.name  # type: ignore[attr-defined]
        flags = {p.name for p in command.params}  # type: ignore[attr-defined]
        assert {"config", "overrides", *(o.name for o in stage.options)} <= flags, stage.name
        resolve(stage.run)  # the run function exists
        if stage.prepare:
            resolve(stage.prepare)


def test_kinds_run_their_main_stage_and_its_sections() -> None:
    assert steps_of("curate") == KINDS["CurationJob"].steps
    assert steps_of("grpo") == KINDS["GRPORun"].steps
    assert steps_of("sft") == (Step("sft"),)
    assert [k.main.name for k in KINDS.values()] == ["curate", "judge-train", "grpo"]
    assert [k.distributed for k in KINDS.values()] == [False, False, True]
    for kind in KINDS.values():
        for step in kind.steps:
            if step.section:
                assert step.section in kind.main.config.model_fields, (kind.kind, step)
            if step.link:
                resolve(step.link)


def test_a_kinds_result_merges_its_steps_under_their_prefix() -> None:
    curated = StageResult("curate", "run-1", {"pairs": "s3://b/pairs.json"}, {},
                          {"pairs": 10.0})
    rm = StageResult("train-rm", "run-2", {"model": "s3://b/rm"}, {"zhufu-reward": "3"},
                     {"rm/acc": 0.9})
    merged = stage_runner.merge(KINDS["CurationJob"].steps, {"curate": curated, "train-rm": rm})
    assert merged == StageResult("curate", "run-1",
                                 {"pairs": "s3://b/pairs.json", "rm_model": "s3://b/rm"},
                                 {"zhufu-reward": "3"}, {"pairs": 10.0, "rm_rm/acc": 0.9})


def test_only_rank_0_writes_the_result_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "termination-log"
    monkeypatch.setenv(RESULT_FILE_ENV, str(target))
    monkeypatch.setenv("RANK", "1")
    emit(StageResult("sft"))
    assert not target.exists()
    monkeypatch.setenv("RANK", "0")
    emit(StageResult("sft"))
    assert StageResult.from_json(target.read_text()) == StageResult("sft")


def test_other_ranks_track_nothing(zhufu_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On rank 1 the logging helpers must not start an MLflow run of their own (an MLflow
    call without an active run starts one: that is how every rank made its own run)."""
    import mlflow

    tracking.configure()
    monkeypatch.setenv("RANK", "1")
    with tracking.stage_run("sft", SFTConfig(experiment="rank-1")) as run:
        assert run is None
        tracking.log_metrics({"x": 1.0})
        tracking.set_tags({"t": "v"})
        tracking.log_dict({"a": 1}, "a.json")
        tracking.log_dataset("zhufu://starter/sft", "sft", "training")
    assert mlflow.active_run() is None
    assert mlflow.get_experiment_by_name("rank-1") is None


def test_single_process_stages_refuse_a_multi_rank_launch(
        zhufu_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    for name, cfg in (("curate", CurateConfig()), ("judge-train", STAGES["judge-train"].config())):
        with pytest.raises(ConfigError, match=f"{name} runs in one process"):
            stage_runner.run(name, cfg)


def test_a_grporun_runs_sft_first_and_trains_its_registered_version() -> None:
    from zhufu.pipeline.config import GRPOConfig
    from zhufu.pipeline.train.grpo_setup import policy_from_sft

    steps = KINDS["GRPORun"].steps
    assert [s.stage for s in steps] == ["sft", "grpo"] and steps[0].section == "sft"
    cfg = GRPOConfig(policy="s3://bucket/base/qwen", output_dir="s3://bucket/out",
                     sft={"max_steps": 2})
    assert cfg.sft is not None and cfg.sft.base_model == "s3://bucket/base/qwen"
    assert GRPOConfig(sft={"base_model": "tiny"}, policy="x/y").sft.base_model == "tiny"
    assert GRPOConfig(sft={}).sft.base_model == "tiny"  # policy left at its default
    sft = StageResult("sft", "run-1", {"model": "s3://bucket/out/sft/run-1"},
                      {"zhufu-policy": "4"}, {"train_loss": 1.0})
    assert policy_from_sft(cfg, {"sft": sft}).policy == "models:/zhufu-policy/4"
    unregistered = StageResult("sft", "run-1", {"model": "s3://bucket/out/sft/run-1"})
    assert policy_from_sft(cfg, {"sft": unregistered}).policy == "s3://bucket/out/sft/run-1"
    assert policy_from_sft(cfg, {}).policy == cfg.policy
    grpo = StageResult("grpo", "run-2", {"model": "s3://bucket/out/grpo/run-2"},
                       {"zhufu-policy": "5"}, {"steps": 4.0})
    merged = stage_runner.merge(steps, {"sft": sft, "grpo": grpo})
    assert merged.registered == {"zhufu-policy": "5", "zhufu-policy@sft": "4"}
    assert list(merged.registered) == ["zhufu-policy", "zhufu-policy@sft"]  # main one first
    assert merged.outputs == {"model": "s3://bucket/out/grpo/run-2",
                              "sft_model": "s3://bucket/out/sft/run-1"}


def test_a_retried_job_finds_the_steps_an_earlier_attempt_finished(
        zhufu_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    tracking.configure()
    result = StageResult("sft", "r", {"model": "s3://b/sft/r"}, {"zhufu-policy": "1"})
    assert tracking.finished_in_this_job("sft", "retries") is None  # not in a pod
    monkeypatch.setenv(tracking.JOB_UID_ENV, "uid-1")
    assert tracking.finished_in_this_job("sft", "retries") is None  # no such experiment
    with tracking.stage_run("sft", SFTConfig(experiment="retries")):
        pass  # finished without a result: not reusable
    with tracking.stage_run("sft", SFTConfig(experiment="retries")):
        tracking.set_tags({tracking.RESULT_TAG: result.to_json()})
    with pytest.raises(RuntimeError), tracking.stage_run("grpo", SFTConfig(experiment="retries")):
        tracking.set_tags({tracking.RESULT_TAG: result.to_json()})
        raise RuntimeError("killed")  # a FAILED run is never reused
    assert StageResult(**tracking.finished_in_this_job("sft", "retries")) == result
    assert tracking.finished_in_this_job("grpo", "retries") is None
    monkeypatch.setenv(tracking.JOB_UID_ENV, "uid-2")  # another Job (a new resource)
    assert tracking.finished_in_this_job("sft", "retries") is None
    assert mlflow.active_run() is None
