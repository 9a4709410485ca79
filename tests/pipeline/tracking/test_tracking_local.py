"""Tracking against the real local store (sqlite + artifact folder under ZHUFU_HOME)."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import pytest

from zhufu.pipeline import tracking
from zhufu.pipeline.config import CurateConfig, SFTConfig
from zhufu.pipeline.models import ModelSpecError, resolve_model, tiny_policy_path


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_flatten_params_drops_secrets() -> None:
    cfg = CurateConfig.model_validate({"llm": {"backend": "openai", "model": "m",
                                               "base_url": "http://x/v1",
                                               "api_key_file": "/run/secret/key"}})
    params = tracking.flatten_params(cfg.model_dump(mode="json"))
    assert params["llm.model"] == "m" and params["llm.base_url"] == "http://x/v1"
    assert params["retrieval.kind"] == "bm25" and params["max_queries"] == "null"
    assert not [k for k in params if "key" in k.lower()]


def test_local_store_and_stage_run(zhufu_home: Path) -> None:
    import mlflow

    uri = tracking.configure()
    assert uri == f"sqlite:///{zhufu_home / 'mlflow.db'}"
    assert mlflow.get_tracking_uri() == uri and mlflow.get_registry_uri() == uri
    exp_name = _unique("exp")
    cfg = SFTConfig(experiment=exp_name, max_steps=3, lora={"r": 4})
    with tracking.stage_run("sft", cfg) as run:
        tracking.log_metrics({"loss": 1.5, "note": "skipped", "flag": True}, step=2)
        tracking.log_dataset("zhufu://starter/sft", "starter", "training")
        tracking.log_png(_png(zhufu_home / "plot.png"))
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params["max_steps"] == "3" and got.data.params["lora.r"] == "4"
    assert got.data.tags["zhufu.stage"] == "sft" and "zhufu.version" in got.data.tags
    assert got.data.metrics == {"loss": 1.5}
    inputs = got.inputs.dataset_inputs
    assert [(d.dataset.name, d.tags[0].value) for d in inputs] == [("starter", "training")]
    exp = mlflow.get_experiment_by_name(exp_name)
    assert exp.artifact_location == (zhufu_home / "mlartifacts" / exp_name).as_uri()
    files = [f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "plots")]
    assert files == ["plots/plot.png"]


def test_stage_run_failure_and_nesting(zhufu_home: Path) -> None:
    import mlflow

    cfg = SFTConfig(experiment=_unique("exp"))
    with pytest.raises(RuntimeError, match="boom"), tracking.stage_run("sft", cfg) as run:
        raise RuntimeError("boom")
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"
    with tracking.stage_run("run", cfg) as outer, tracking.stage_run("sft", cfg) as inner:
        pass
    assert mlflow.get_run(inner.info.run_id).data.tags["mlflow.parentRunId"] == outer.info.run_id


def test_unreachable_server_fails_fast(zhufu_home: Path, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    started = time.monotonic()
    with pytest.raises(tracking.TrackingError, match=f"MLflow server {url} is unreachable"):
        tracking.configure()
    assert time.monotonic() - started < tracking.HEALTH_TIMEOUT_S + 2


def test_register_round_trip_and_alias_moves(zhufu_home: Path) -> None:
    from mlflow import MlflowClient

    name = _unique("policy")
    v1 = tracking.register_model_dir(tiny_policy_path(), name, alias="sft", tags={"k": "v"})
    with tracking.stage_run("sft", SFTConfig()) as run:
        v2 = tracking.register_model_dir(tiny_policy_path(), name, alias="sft")
    assert (v1, v2) == ("1", "2")
    mv = MlflowClient().get_model_version_by_alias(name, "sft")
    assert str(mv.version) == "2" and mv.run_id == run.info.run_id
    assert MlflowClient().get_model_version(name, "1").tags["k"] == "v"
    by_alias = resolve_model(f"models:/{name}@sft")
    assert by_alias == resolve_model(f"models:/{name}/latest") == resolve_model(f"models:/{name}/2")
    assert by_alias != resolve_model(f"models:/{name}/1")
    assert resolve_model(f"models:/{name}@sft") == by_alias  # cached, not downloaded again
    expected = {p.name for p in tiny_policy_path().iterdir()}
    assert expected <= {p.name for p in by_alias.iterdir()}
    assert (by_alias / "model.safetensors").read_bytes() == (
        tiny_policy_path() / "model.safetensors").read_bytes()
    from_run = resolve_model(f"runs:/{run.info.run_id}/model")
    assert expected <= {p.name for p in from_run.iterdir()}
    with pytest.raises(ModelSpecError, match="not found in the MLflow registry"):
        resolve_model(f"models:/{name}@nope")
    with pytest.raises(ModelSpecError, match="version must be"):
        resolve_model(f"models:/{name}/abc")


def test_register_rejects_non_model_dir(zhufu_home: Path, tmp_path: Path) -> None:
    with pytest.raises(tracking.TrackingError, match="no config.json"):
        tracking.register_model_dir(tmp_path, "x")


def _png(path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    fig.savefig(path)
    plt.close(fig)
    return path


@pytest.mark.slow
def test_concurrent_first_use_of_a_fresh_store(tmp_path: Path) -> None:
    """Three processes opening the same fresh local store at once all succeed (without the
    file lock in ``configure`` MLflow's schema creation races: "table ... already exists")."""
    import os
    import subprocess
    import sys

    script = ("from zhufu.pipeline import tracking; tracking.configure(); "
              "print(tracking.ensure_experiment('zhufu'))")
    env = {**os.environ, "ZHUFU_HOME": str(tmp_path / "home")}
    env.pop("MLFLOW_TRACKING_URI", None)
    procs = [subprocess.Popen([sys.executable, "-P", "-c", script], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-500:] for _, err in outs]
    assert len({out.strip() for out, _ in outs}) == 1


def test_experiments_open_on_the_training_view(zhufu_home: Path) -> None:
    """A new experiment carries MLflow 3's view tag set to the training view; an existing one
    without it gets it; one whose kind the user chose in the UI keeps theirs."""
    import mlflow

    tracking.configure()
    fresh = _unique("kind")
    exp = mlflow.get_experiment(tracking.ensure_experiment(fresh))
    assert exp.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    untagged = _unique("old")
    old_id = mlflow.create_experiment(untagged)
    assert tracking.EXPERIMENT_KIND_TAG not in mlflow.get_experiment(old_id).tags
    assert tracking.ensure_experiment(untagged) == old_id
    assert mlflow.get_experiment(old_id).tags[tracking.EXPERIMENT_KIND_TAG] == (
        "custom_model_development")
    mlflow.MlflowClient().set_experiment_tag(old_id, tracking.EXPERIMENT_KIND_TAG,
                                             "genai_development")
    tracking.ensure_experiment(untagged)
    assert mlflow.get_experiment(old_id).tags[tracking.EXPERIMENT_KIND_TAG] == (
        "genai_development")
