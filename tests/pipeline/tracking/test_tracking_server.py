"""Tracking against real servers on 127.0.0.1: ``mlflow server`` with its artifacts on a
moto_server bucket, and ``zhufu ui``'s server on the local store.
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import free_port, start_server, stop_server, wait_http
from zhufu.pipeline import tracking
from zhufu.pipeline.config import SFTConfig
from zhufu.pipeline.models import load_causal_lm, resolve_model, tiny_policy_path
from zhufu.pipeline.models.tiny import TINY_SHAPE

pytestmark = pytest.mark.integration


def test_register_model_lands_in_bucket(mlflow_server, zhufu_home: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A model registered through the server is stored in the S3 bucket (found with boto3)
    and comes back from ``models:/NAME@ALIAS`` as a loadable dir; the client has no AWS
    settings at all (the server proxies artifacts)."""
    import mlflow

    tiny = tiny_policy_path()  # built before switching stores
    for var in ("AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    assert tracking.configure() == mlflow_server.uri
    name = f"policy-{uuid.uuid4().hex[:8]}"
    with tracking.stage_run("sft", SFTConfig(experiment=name)) as run:
        tracking.log_metrics({"loss": 0.5}, step=1)
        version = tracking.register_model_dir(tiny, name, alias="sft")
    assert version == "1"
    assert mlflow.get_run(run.info.run_id).data.metrics["loss"] == 0.5
    objects = mlflow_server.s3.client().list_objects_v2(Bucket=mlflow_server.bucket)
    keys = [o["Key"] for o in objects.get("Contents", [])]
    source = mlflow.MlflowClient().get_model_version(name, version).source
    model_id = source.removeprefix("models:/")  # the logged model the version points at
    mine = [k for k in keys if f"/models/{model_id}/artifacts/model/" in k]
    assert sorted(k.rsplit("/", 1)[1] for k in mine) == sorted(p.name for p in tiny.iterdir())
    weights = next(k for k in mine if k.endswith("model.safetensors"))
    size = mlflow_server.s3.client().head_object(Bucket=mlflow_server.bucket, Key=weights)
    assert size["ContentLength"] == (tiny / "model.safetensors").stat().st_size
    local = resolve_model(f"models:/{name}@sft")
    assert (local / "model.safetensors").read_bytes() == (tiny / "model.safetensors").read_bytes()
    model, tok = load_causal_lm(f"models:/{name}@sft", device="cpu")
    assert model.config.hidden_size == TINY_SHAPE["hidden_size"]
    assert len(tok) == model.config.vocab_size < 20_000  # the cut vocabulary


@pytest.mark.slow
def test_ui_serves_the_local_store(zhufu_home: Path, tmp_path: Path) -> None:
    """``tracking.ui_command`` serves the store under ZHUFU_HOME: an experiment created here
    is listed by the server's REST API."""
    name = f"ui-{uuid.uuid4().hex[:8]}"
    tracking.ensure_experiment(name)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = start_server(tracking.ui_command(port), tmp_path / "ui.log", env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health", 90, proc)
        req = urllib.request.Request(
            f"{base}/api/2.0/mlflow/experiments/search", method="POST",
            data=json.dumps({"max_results": 1000}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            names = [e["name"] for e in json.load(resp)["experiments"]]
        assert name in names
    finally:
        stop_server(proc)
