"""Whole-group restart of a 2-node GRPORun, on CPU: two torchrun "nodes" on 127.0.0.1 run
the operator's own Job command (``zhufu.operator.builders.command``: static rendezvous on
node 0, one process per node, gloo), each with its own disk (``ZHUFU_HOME``) and the
checkpoints in S3 (a real moto server). After the first complete checkpoint (``LATEST`` in
S3), node 1's agent and worker are SIGKILLed as when its pod is lost; node 0 must then fail
by itself (not hang), and the whole group started again, as the Job's pods are, resumes
from the checkpoint ``LATEST`` names, ends at the planned step and registers exactly one
version.

Marked ``slow`` and ``distributed``: ``make test-distributed`` (run by ``.ci/run``) runs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import free_port
from zhufu.pipeline.results import RESULT_FILE_ENV, StageResult

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

BIN = Path(sys.executable).parent
MAX_STEPS, SAVE_STEPS = 6, 2


def job_command(node: int, port: int, config: Path) -> list[str]:
    """What pod ``node`` of the GRPORun's Indexed Job runs, with its DNS name, port and
    config path replaced by this machine's."""
    from zhufu.operator.builders import CONFIG_PATH, command
    from zhufu.operator.spec import KINDS

    out = []
    for arg in command(KINDS["GRPORun"], "restart", 2, 0):
        if arg.startswith("--node-rank="):
            arg = f"--node-rank={node}"
        elif arg.startswith("--master-addr="):
            arg = "--master-addr=127.0.0.1"
        elif arg.startswith("--master-port="):
            arg = f"--master-port={port}"
        elif arg == CONFIG_PATH:
            arg = str(config)
        elif arg in ("torchrun", "zhufu"):
            arg = str(BIN / arg)
        out.append(arg)
    return out


def start_pod(node: int, port: int, config: Path, env: dict[str, str], log: Path
              ) -> subprocess.Popen:
    return subprocess.Popen(job_command(node, port, config), env=env, cwd=log.parent,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def kill_pod(agent: subprocess.Popen) -> None:
    """SIGKILL the agent and every process under it (torchrun puts its worker in another
    session, so the agent's process group alone would leave the worker running)."""
    import psutil

    procs = [psutil.Process(agent.pid), *psutil.Process(agent.pid).children(recursive=True)]
    for proc in procs:
        os.kill(proc.pid, signal.SIGKILL)
    agent.wait(timeout=30)
    psutil.wait_procs(procs[1:], timeout=30)


def test_lost_node_restarts_the_group_from_the_last_checkpoint(
        zhufu_home: Path, s3_server: object, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from zhufu.pipeline import tracking
    from zhufu.pipeline.models import tiny_policy_path

    tiny_policy_path()  # built once here, not by both nodes at once
    homes = [zhufu_home, tmp_path / "node1-home"]
    shutil.copytree(zhufu_home / "models", homes[1] / "models")
    name = "zhufu-group-restart"
    s3 = s3_server.client()  # type: ignore[attr-defined]
    s3.create_bucket(Bucket="group-restart")
    ckpt = "s3://group-restart/grpo"

    def latest() -> str | None:
        try:
            body = s3.get_object(Bucket="group-restart", Key="grpo/LATEST")["Body"]
        except s3.exceptions.NoSuchKey:
            return None
        return body.read().decode().strip()
    config = tmp_path / "grpo.yaml"
    config.write_text(yaml.safe_dump({
        "policy": "tiny", "preset": "tiny", "max_steps": MAX_STEPS, "save_steps": SAVE_STEPS,
        "batch_size": 4, "max_completion_length": 8, "resume": "auto",
        "rewards": [{"name": "format"}, {"name": "length"}], "checkpoint_dir": ckpt,
        "output_dir": str(tmp_path / "out"), "experiment": "group-restart",
        "register_as": name}))
    result_file = tmp_path / "termination-log"
    env = {**os.environ, **s3_server.env,  # type: ignore[attr-defined]
           RESULT_FILE_ENV: str(result_file), "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    envs = [{**env, "ZHUFU_HOME": str(home)} for home in homes]
    logs = [tmp_path / "node0.log", tmp_path / "node1.log"]

    def tail() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in logs if p.is_file())

    port = free_port()
    pods = [start_pod(n, port, config, envs[n], logs[n]) for n in (0, 1)]
    deadline = time.monotonic() + 900
    while latest() is None:
        assert all(p.poll() is None for p in pods), f"a node exited early\n{tail()}"
        assert time.monotonic() < deadline, f"no checkpoint in 15 min\n{tail()}"
        time.sleep(0.2)
    kill_pod(pods[1])
    lost_at = time.monotonic()
    code0 = pods[0].wait(timeout=300)  # the survivor fails by itself instead of hanging
    assert code0 != 0, tail()
    noticed_s = time.monotonic() - lost_at
    assert not result_file.exists(), "the broken group must not report a result"

    port = free_port()  # the Job's new pods (a fresh rendezvous)
    pods = [start_pod(n, port, config, envs[n], logs[n]) for n in (0, 1)]
    codes = [p.wait(timeout=900) for p in pods]
    assert codes == [0, 0], tail()
    result = StageResult.from_json(result_file.read_text(encoding="utf-8"))
    assert result.metrics["steps"] == MAX_STEPS, tail()
    resumed = result.metrics["resumed_from_step"]
    assert 0 < resumed < MAX_STEPS and resumed % SAVE_STEPS == 0, result.metrics
    assert latest() == f"checkpoint-{MAX_STEPS}"

    tracking.configure()
    client = MlflowClient()
    versions = client.search_model_versions(f"name='{name}'")
    assert [(str(v.version), v.run_id) for v in versions] == [("1", result.mlflow_run_id)]
    experiment = client.get_experiment_by_name("group-restart")
    finished = [r for r in client.search_runs([experiment.experiment_id])
                if r.info.status == "FINISHED"]
    assert [r.info.run_id for r in finished] == [result.mlflow_run_id]
    print(f"node 0 failed {noticed_s:.1f} s after node 1 was lost; resumed from {resumed}")
