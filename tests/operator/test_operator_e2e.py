"""End to end: CurationJob → operator → Job → the Job's own command → MLflow/S3 → status.

No cluster can run here: the emulator is the API server and ``kubelet.run_job`` plays the
kubelet — it runs the created Job's container command (``zhufu curate --config …``, same
entrypoint, env from the pod spec incl. the S3 secret by secretKeyRef) as a local process
against a real ``mlflow server`` whose artifacts live on ``moto_server``, then writes the
termination message into the pod status. The resource must end ``Succeeded`` with the
MLflow run id the stage reported, and that run must exist on the server.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubelet import run_job
from opharness import NS, Operator, emulator, phase_is, status, wait_for


@pytest.mark.slow
@pytest.mark.integration
async def test_curationjob_end_to_end_with_real_mlflow_and_s3(
        tmp_path: Path, mlflow_server: Any) -> None:
    started = time.monotonic()
    s3 = mlflow_server.s3
    async with emulator() as (emu, url):
        op = Operator(tmp_path / "op", url, {"ZHUFU_MLFLOW_URI": mlflow_server.uri,
                                             "ZHUFU_S3_ENDPOINT": s3.endpoint,
                                             "ZHUFU_S3_SECRET": "zhufu-s3"})
        (tmp_path / "op").mkdir()
        op.start()
        try:
            emu.create("curationjobs", {
                "apiVersion": "zhufu.dev/v1alpha1", "kind": "CurationJob",
                "metadata": {"name": "e2e", "namespace": NS},
                "spec": {"experiment": "zhufu-e2e", "max_queries": 2, "samples_per_query": 2,
                         "output_dir": f"s3://{mlflow_server.bucket}/curation/e2e"}})
            await wait_for(lambda: emu.get("jobs", NS, "e2e-curate"), "the Job", op=op)
            run = run_job(emu, "e2e-curate", tmp_path / "pod",
                          secrets={"zhufu-s3": {"AWS_ACCESS_KEY_ID": "testing",
                                                "AWS_SECRET_ACCESS_KEY": "testing"}},
                          extra_env={"AWS_DEFAULT_REGION": "us-east-1"}, timeout=300)
            assert run.exit_code == 0, run.log[-3000:]
            await wait_for(phase_is(emu, "curationjobs", "e2e", "Succeeded"), "Succeeded",
                           op=op)
            st = status(emu, "curationjobs", "e2e")
            run_id = st["mlflowRunId"]
            assert st["outputs"]["pairs"].startswith(f"s3://{mlflow_server.bucket}/curation/e2e")
            assert st["metrics"]["pairs"] >= 1
            with urllib.request.urlopen(
                    f"{mlflow_server.uri}/api/2.0/mlflow/runs/get?run_id={run_id}") as resp:
                assert resp.status == 200
            keys = [o["Key"] for o in s3.client().list_objects_v2(
                Bucket=mlflow_server.bucket, Prefix="curation/e2e").get("Contents", [])]
            assert any(k.endswith("pairs.json") for k in keys), keys
        finally:
            await op.stop()
    print(f"e2e wall {time.monotonic() - started:.1f}s, stage {run.seconds:.1f}s")
