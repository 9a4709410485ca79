"""Planted secrets never leak: not into ConfigMaps, Jobs, CR status, Events, operator logs,
stage logs, outputs, S3 objects or the MLflow store (params, tags, metrics, artifacts).

Operator side: the real operator against the emulator, with planted AWS keys in its own
environment and a CurationJob whose LLM key comes from a Secret holding a planted value;
every object it writes and its log are grepped, and the Job must reference the Secret by
name (so the key still reaches the pod). Stage side: ``zhufu curate`` (real subprocess)
with the planted LLM key in a mounted-style key file, planted AWS keys in its environment,
an ``s3://`` output on moto_server and the local MLflow store; the LLM server (chaos_llm.py,
no faults) must have received the key (hash of the Authorization header), and the stage's
output, logs, S3 objects and the whole MLflow store (sqlite file and artifact folder) must
not hold it.

The pod hardening (non-root, read-only root fs, dropped capabilities, RuntimeDefault
seccomp, no ServiceAccount token) and RBAC are tested in ``tests/charts/test_chart_security.py``,
``tests/charts/test_rbac_chart.py`` and ``tests/operator/test_builders.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from opharness import NS, Operator, emulator, wait_for
from reltools import ChaosLLM, labelled_from_pairs, zhufu

LLM_KEY = "sk-PLANTED-llm-3f9a1c7e"
AWS_ID = "AKIAPLANTED7Q2W"
AWS_SECRET = "PLANTED-aws-secret-9d8e7f"
PLANTED = (LLM_KEY, AWS_ID, AWS_SECRET)


def _leaks(blob: bytes | str, where: str) -> list[str]:
    data = blob.encode() if isinstance(blob, str) else blob
    return [f"{s} in {where}" for s in PLANTED if s.encode() in data]


async def test_operator_writes_no_secret(tmp_path: Path) -> None:
    async with emulator() as (emu, url):
        # the harness's opted-in LLM key Secret, holding the planted key
        emu.patch("secrets", NS, "llm-api-key",
                  {"data": {"api-key": base64.b64encode(LLM_KEY.encode()).decode()}})
        op = Operator(tmp_path, url, {"AWS_ACCESS_KEY_ID": AWS_ID,
                                      "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                                      "OPENAI_API_KEY": LLM_KEY})
        op.start()
        try:
            emu.create("curationjobs", {
                "apiVersion": "zhufu.dev/v1alpha1", "kind": "CurationJob",
                "metadata": {"name": "sec", "namespace": NS},
                "spec": {"llm": {"backend": "openai", "model": "m",
                                 "baseUrl": "http://llm:8000/v1"},
                         "llmApiKeySecret": {"name": "llm-api-key"}}})
            job = await wait_for(lambda: emu.get("jobs", NS, "sec-curate"), "the Job", op=op)
            await wait_for(lambda: (emu.get("curationjobs", NS, "sec") or {}).get("status"),
                           "a status", op=op)
        finally:
            await op.stop()
        text = json.dumps(job)
        assert "llm-api-key" in text  # the key reaches the pod by reference only
        leaks: list[str] = []
        for plural in ("configmaps", "jobs", "curationjobs", "events", "services", "pods"):
            for obj in emu.objects(plural, NS):
                leaks += _leaks(json.dumps(obj), f"{plural}/{obj['metadata']['name']}")
        leaks += _leaks(op.tail(10_000), "operator log")
        assert not leaks, leaks
        assert emu.objects("configmaps", NS) and emu.objects("events", NS)


@pytest.mark.integration
@pytest.mark.slow  # one CLI run with S3 and the MLflow store: ~20 s
def test_stage_logs_and_tracks_no_secret(chaos_llm: Any, s3_server: Any, shared_data: Path,
                                         tmp_path: Path) -> None:
    server: ChaosLLM = chaos_llm(rate=0.0)
    s3_server.client().create_bucket(Bucket="secrets-test")
    key_file = tmp_path / "secret" / "api-key"
    key_file.parent.mkdir()
    key_file.write_text(LLM_KEY + "\n", encoding="utf-8")
    labelled = labelled_from_pairs(shared_data, tmp_path / "labelled.jsonl", n_queries=2)
    cfg = tmp_path / "curate.yaml"
    cfg.write_text(yaml.safe_dump({
        "responses": str(labelled), "output_dir": "s3://secrets-test/out",
        "experiment": "reliability-secrets",
        "llm": {"backend": "openai", "model": "m", "base_url": server.url,
                "api_key_file": str(key_file)}}), encoding="utf-8")
    home = tmp_path / "home"
    env = {**s3_server.env, "AWS_ACCESS_KEY_ID": AWS_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET}
    ran = zhufu(["curate", "-c", str(cfg), "--no-progress"], home, env=env, timeout=180)
    assert ran.rc == 0, ran.stderr[-2000:]
    wanted = hashlib.sha256(f"Bearer {LLM_KEY}".encode()).hexdigest()
    log = server.records()
    assert log and all(r["auth_sha256"] == wanted for r in log)  # the key was used

    leaks = _leaks(ran.stdout + ran.stderr, "stage stdout/stderr")
    for path in home.rglob("*"):  # MLflow sqlite store, artifacts, work files, caches
        if path.is_file():
            leaks += _leaks(path.read_bytes(), str(path.relative_to(home)))
    client = s3_server.client()
    for obj in client.list_objects_v2(Bucket="secrets-test").get("Contents", []):
        body = client.get_object(Bucket="secrets-test", Key=obj["Key"])["Body"].read()
        leaks += _leaks(body, f"s3://secrets-test/{obj['Key']}")
    assert not leaks, leaks
    assert (home / "mlflow.db").stat().st_size > 0
