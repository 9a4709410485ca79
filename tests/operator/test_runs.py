"""The operator finds a resource's MLflow run by its tags (``zhufu.resource``,
``zhufu.job_uid``) over MLflow's REST API: against a real ``mlflow server`` on 127.0.0.1,
with runs made by the pipeline's own tracking code as a pod would make them."""

from __future__ import annotations

import socket

import pytest

from zhufu.operator import runs
from zhufu.pipeline import tracking
from zhufu.pipeline.config import SFTConfig

RESOURCE = "grporuns/default/runs-test"


def _stage_run(monkeypatch: pytest.MonkeyPatch, job_uid: str, fail: bool = False) -> str:
    monkeypatch.setenv(tracking.RESOURCE_ENV, RESOURCE)
    monkeypatch.setenv(tracking.JOB_UID_ENV, job_uid)
    run_id = ""
    try:
        with tracking.stage_run("sft", SFTConfig(experiment="operator-runs")) as run:
            run_id = run.info.run_id
            if fail:
                raise RuntimeError("the stage failed")
    except RuntimeError:
        pass
    return run_id


def test_newest_run_of_the_job_is_found_running_or_failed(
        mlflow_server, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    assert runs.find_run(mlflow_server.uri, "operator-runs", RESOURCE) is None  # no experiment
    first = _stage_run(monkeypatch, "job-1")
    failed = _stage_run(monkeypatch, "job-1", fail=True)
    other_job = _stage_run(monkeypatch, "job-2")
    found = runs.find_run(mlflow_server.uri, "operator-runs", RESOURCE, "job-1")
    assert found is not None and (found.run_id, found.status) == (failed, "FAILED")
    assert first != failed
    newest = runs.find_run(mlflow_server.uri, "operator-runs", RESOURCE)
    assert newest is not None and newest.run_id == other_job
    assert newest.url("http://mlflow.example/") == (
        f"http://mlflow.example/#/experiments/{newest.experiment_id}/runs/{other_job}")
    assert runs.find_run(mlflow_server.uri, "operator-runs", "grporuns/default/other") is None
    assert runs.find_run("file:///tmp/mlruns", "operator-runs", RESOURCE) is None


def test_a_server_that_does_not_answer_is_left_alone_for_a_while() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        assert runs.find_run(uri, "zhufu", RESOURCE) is None
        assert runs._quiet_until[uri] > 0
