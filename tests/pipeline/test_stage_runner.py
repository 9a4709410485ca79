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
