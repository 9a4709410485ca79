"""Rank safety of the distributed stages under ``torchrun --standalone --nproc-per-node 2``
on CPU (gloo): both ranks train (the same optimizer steps, the same weights after), and
global rank 0 alone leaves the stage's side effects: one MLflow run, one registered version,
one published model (on a real moto S3 server), one result file, one printed result; a
GRPO checkpoint in S3 holds every rank's part.

Each case is a real launch of the installed ``zhufu`` command, two processes on two shared
cores (about a minute each): marked ``slow`` and ``distributed`` (``make test-distributed``,
which ``.ci/run`` runs after the default suite).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zhufu.pipeline.results import RESULT_FILE_ENV, StageResult

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

BIN = Path(sys.executable).parent
SMALL = {
    "sft": ["max_steps=2", "batch_size=2", "max_length=48"],
    "train-rm": ["max_steps=2", "batch_size=4", "max_length=48"],
    "grpo": ["policy=tiny", "preset=tiny", "max_steps=2", "batch_size=4",
             "max_completion_length=8", "resume=never",
             "rewards=[{name: format}, {name: length}]"],
}
RANK_LINE = re.compile(r"zhufu: rank (\d)/2: (\S+): (\d+) optimizer steps, "
                       r"weight checksum (\S+)")


@pytest.mark.parametrize("stage", list(SMALL))
def test_two_ranks_train_and_rank_0_alone_reports(stage: str, zhufu_home: Path,
                                                  s3_server: object, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from zhufu.pipeline import tracking
    from zhufu.pipeline.models import tiny_policy_path

    tiny_policy_path()  # built once here rather than by both ranks at once
    bucket = f"ranks-{stage}"
    s3_server.client().create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    name = f"zhufu-ranks-{stage}"
    sets = [*SMALL[stage], f"experiment=ranks-{stage}", f"register_as={name}",
            f"output_dir=s3://{bucket}/out"]
    if stage == "grpo":  # checkpoints to S3 as well: every rank's part, LATEST last
        s3_server.client().create_bucket(Bucket="ranks-ckpt")  # type: ignore[attr-defined]
        sets += ["checkpoint_dir=s3://ranks-ckpt/grpo", "save_steps=2"]
    result_file = tmp_path / "termination-log"
    env = {**os.environ, **s3_server.env,  # type: ignore[attr-defined]
           "ZHUFU_HOME": str(zhufu_home), RESULT_FILE_ENV: str(result_file),
           "ZHUFU_RESOURCE": f"tests/ranks/{stage}", "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2",
           str(BIN / "zhufu"), stage, *(a for s in sets for a in ("--set", s))]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]

    # both ranks trained the same model
    ranks = RANK_LINE.findall(proc.stderr)
    assert sorted(r[0] for r in ranks) == ["0", "1"], proc.stderr[-4000:]
    assert {r[1:] for r in ranks} == {(stage, "2", ranks[0][3])}

    # rank 0 alone printed and wrote the result
    printed = [line for line in proc.stdout.splitlines() if line.startswith('{"stage"')]
    assert len(printed) == 1, proc.stdout
    result = StageResult.from_json(result_file.read_text(encoding="utf-8"))
    assert result == StageResult.from_json(printed[0]) and result.stage == stage

    # one MLflow run, tagged with the resource; one registered version, from that run
    tracking.configure()
    client = MlflowClient()
    experiment = client.get_experiment_by_name(f"ranks-{stage}")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [result.mlflow_run_id]
    assert runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["zhufu.resource"] == f"tests/ranks/{stage}"
    versions = client.search_model_versions(f"name='{name}'")
    assert [(str(v.version), v.run_id) for v in versions] == [(result.registered[name],
                                                               result.mlflow_run_id)]
    assert versions[0].tags["zhufu.resource"] == f"tests/ranks/{stage}"

    # one published model, a plain (merged, complete) Hugging Face dir
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(  # type: ignore[attr-defined]
        Bucket=bucket)["Contents"]]
    folders = {k.rsplit("/", 1)[0] for k in keys}
    assert folders == {f"out/{stage}/{result.mlflow_run_id}"}, keys
    assert result.outputs["model"] == f"s3://{bucket}/out/{stage}/{result.mlflow_run_id}"
    files = {k.rsplit("/", 1)[1] for k in keys}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    assert "training_args.bin" not in files
    if stage == "grpo":
        ckpt = {o["Key"] for o in s3_server.client().list_objects_v2(  # type: ignore[attr-defined]
            Bucket="ranks-ckpt")["Contents"]}
        assert {"grpo/LATEST", "grpo/checkpoint-2/trainer_state.json",
                "grpo/checkpoint-2/rng_state_0.pth", "grpo/checkpoint-2/rng_state_1.pth"} <= ckpt
