"""Builders, spec validation and status logic, with no cluster at all.

Every rendered built-in manifest is checked with ``kubernetes-validate --strict`` against
the Kubernetes 1.37 schemas (no API server can run on this machine).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from zhufu.operator import builders
from zhufu.operator.settings import OperatorSettings, SettingsError, load_settings
from zhufu.operator.spec import KINDS, WORKLOAD_FIELDS, kind_of
from zhufu.operator.validation import SpecError, validate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "crs"
SETTINGS = OperatorSettings(mlflow_uri="http://mlflow:5000", s3_endpoint="http://minio:9000",
                            s3_secret="zhufu-s3", trainer_image="reg/trainer:1")


def _example(kind: str) -> dict[str, Any]:
    for p in EXAMPLES.glob("*.yaml"):
        doc = yaml.safe_load(p.read_text())
        if doc["kind"] == kind:
            return doc
    raise KeyError(kind)


def _render(kind: str, spec: dict[str, Any], name: str = "demo") -> list[dict[str, Any]]:
    k = kind_of(kind)
    workload, _, config = validate(k, name, spec)
    return builders.children(k, name, "team-a", workload, config, SETTINGS, generation=3)


def _container(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]["containers"][0]


def test_config_fields_never_collide_with_workload_fields() -> None:
    for kind in KINDS.values():
        assert not set(kind.config.model_fields) & WORKLOAD_FIELDS, kind.kind


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_rendered_manifest_passes_kubernetes_validate_strict(kind: str) -> None:
    for spec in (_example(kind)["spec"], {}):
        for obj in _render(kind, spec):
            kubernetes_validate.validate(obj, "1.37.0", strict=True)


def test_single_node_job_runs_the_stage_cli_with_hardened_pod() -> None:
    cm, job = _render("JudgeTraining", {"rounds": 2, "resources": {"cpu": "2", "memory": "4Gi"},
                                        "queue": "team", "suspend": True})
    assert job["metadata"]["name"] == "demo-judge" and cm["metadata"]["name"] == "demo-judge-config"
    assert yaml.safe_load(cm["data"]["config.yaml"]) == {"rounds": 2}
    assert job["metadata"]["labels"][builders.QUEUE_LABEL] == "team"
    assert job["spec"]["suspend"] is True and job["spec"]["completionMode"] == "NonIndexed"
    c = _container(job)
    assert c["command"] == ["zhufu", "judge", "train", "--config", "/etc/zhufu/config.yaml"]
    assert c["image"] == "reg/trainer:1"
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    env = {e["name"]: e for e in c["env"]}
    assert env["ZHUFU_RESULT_FILE"]["value"] == "/dev/termination-log"
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow:5000"
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio:9000"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "zhufu-s3", "key": "AWS_SECRET_ACCESS_KEY"}
    assert c["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"},
                              "limits": {"memory": "4Gi"}}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["runAsNonRoot"] and not sc[
        "allowPrivilegeEscalation"]
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "zhufu-job" and pod["restartPolicy"] == "Never"
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/tmp", "/etc/zhufu", builders.WORK_DIR, builders.CACHE_DIR} <= mounts


def test_multi_node_grpo_is_an_indexed_job_with_headless_service_and_torchrun() -> None:
    spec = _example("GRPORun")["spec"]
    objs = _render("GRPORun", spec)
    cm, svc, job = objs
    assert svc["spec"]["clusterIP"] == "None" and svc["metadata"]["name"] == "demo-grpo"
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 2
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == "demo-grpo"
    cmd = _container(job)["command"]
    assert cmd[0] == "torchrun" and "--nnodes=2" in cmd and "--nproc-per-node=8" in cmd
    assert "--master-addr=demo-grpo-0.demo-grpo" in cmd
    assert cmd[-5:] == ["--no-python", "zhufu", "grpo", "--config", "/etc/zhufu/config.yaml"]
    assert "--node-rank=$(JOB_COMPLETION_INDEX)" in cmd
    res = _container(job)["resources"]
    assert res["limits"]["nvidia.com/gpu"] == "8" == res["requests"]["nvidia.com/gpu"]
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["priorityClassName"] == "training-high"
    assert any(v.get("emptyDir", {}).get("medium") == "Memory" for v in pod["volumes"])


@pytest.mark.parametrize("kind", list(KINDS))
def test_torchrun_only_for_distributed_kinds(kind: str) -> None:
    """curate and judge-train run in one process: with several GPUs they still start once
    (under torchrun every rank would curate, call the LLM and register on its own)."""
    spec = {**_example(kind)["spec"], "resources": {"gpus": 4}, "nodes": 1}
    cmd = _container(_render(kind, spec)[-1])["command"]
    if kind_of(kind).distributed:
        assert cmd[:3] == ["torchrun", "--standalone", "--nproc-per-node=4"]
    else:
        assert cmd[0] == "zhufu" and "torchrun" not in cmd
    assert cmd[-2:] == ["--config", "/etc/zhufu/config.yaml"]
    assert [k for k in KINDS if kind_of(k).distributed] == ["GRPORun"]


def test_llm_secret_is_mounted_never_inlined() -> None:
    spec = {**_example("CurationJob")["spec"]}
    cm, job = _render("CurationJob", spec)
    config = yaml.safe_load(cm["data"]["config.yaml"])
    assert config["llm"]["api_key_file"] == builders.LLM_KEY_FILE
    vols = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert vols["llm-key"]["secret"]["secretName"] == "llm-api-key"
    text = yaml.safe_dump([cm, job])
    assert "llmApiKeySecret" not in text


def _env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for var in [v for v in os.environ if v.startswith("ZHUFU_")]:
        monkeypatch.delenv(var)
    for var, value in values.items():
        monkeypatch.setenv(var, value)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, ZHUFU_MLFLOW_URI="http://m:1", ZHUFU_DEPENDENCY_POLL_S="0.5",
         ZHUFU_TRAINER_IMAGE="x/y:z", ZHUFU_NAMESPACE="ml", ZHUFU_HOME="/elsewhere")
    s = load_settings()
    assert (s.mlflow_uri, s.dependency_poll_s, s.trainer_image, s.namespace) == (
        "http://m:1", 0.5, "x/y:z", "ml")
    for var, bad, why in (("ZHUFU_DEPENDENCY_TIMEOUT_S", "soon", "number"),
                          ("ZHUFU_DEFAULT_TOLERATIONS", "[{", "not JSON"),
                          ("ZHUFU_DEFAULT_NODE_SELECTOR", "[]", "dictionary"),
                          ("ZHUFU_IMAGE_PULL_POLICY", "Sometimes", "IfNotPresent"),
                          ("ZHUFU_RUN_AS_USER", "0", "greater than or equal to 1")):
        _env(monkeypatch, **{var: bad})
        with pytest.raises(SettingsError, match=f"{var}=.*{why}"):
            load_settings()


def test_default_gpu_scheduling_applies_only_where_the_spec_is_silent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, ZHUFU_DEFAULT_NODE_SELECTOR='{"pool": "gpu"}',
         ZHUFU_DEFAULT_TOLERATIONS='[{"key": "gpu", "operator": "Exists"}]',
         ZHUFU_DEFAULT_PRIORITY_CLASS="batch", ZHUFU_NAMESPACE="")
    s = load_settings()
    k = KINDS["GRPORun"]
    workload, _, config = validate(k, "d", {"nodeSelector": {"pool": "h100"}})
    pod = builders.job(k, "d", "ns", workload, config, s)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "h100"}
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert pod["priorityClassName"] == "batch"
    _env(monkeypatch, ZHUFU_DEFAULT_NODE_SELECTOR="null", ZHUFU_DEFAULT_TOLERATIONS="")
    assert load_settings().defaults() == {}


# Specs that pass the CRD schema but not the operator: (kind, spec, field named in the error).
INVALID = [
    ("GRPORun", {"batchSize": 6, "numGenerations": 4}, "spec"),
    ("GRPORun", {"rewards": [{"name": "format", "weight": 0}]}, "spec"),
    ("GRPORun", {"vllm": "server"}, "spec"),
    ("GRPORun", {"deepspeed": "zero2"}, "spec.deepspeed"),
    ("GRPORun", {"vllm": "colocate"}, "spec.vllm"),
    ("GRPORun", {"vllm": "server", "vllmServerUrl": "http://vllm:8000"}, "spec.vllm"),
    ("GRPORun", {"batchSize": 32, "resources": {"gpus": 8}, "nodes": 3}, "spec.batchSize"),
    ("GRPORun", {"vllm": "server", "vllmServerUrl": "vllm:8000/v1",
                 "resources": {"gpus": 1}}, "spec.vllmServerUrl"),
    ("GRPORun", {"judgeRef": "j", "rewards": [{"name": "format"}]}, "spec.judgeRef"),
    ("GRPORun", {"judgeRef": "j", "rewards": [{"name": "judge", "model": "m"}]},
     "spec.rewards[0].model"),
    ("GRPORun", {"rewards": [{"name": "rm"}]}, "spec.rewards[0].model"),
    ("CurationJob", {"nodes": 2}, "spec.nodes"),
    ("CurationJob", {"judgeRef": "x"}, "spec.judgeRef"),
    ("CurationJob", {"llm": {"backend": "openai"}}, "spec.llm"),
    ("CurationJob", {"llmApiKeySecret": {"name": "s"}, "llm": {"apiKeyFile": "/k"}},
     "spec.llm.apiKeyFile"),
    ("JudgeTraining", {"tolerations": [{"operator": "Exists", "value": "v"}]},
     "spec.tolerations[0].value"),
    ("JudgeTraining", {"tolerations": [{"key": "k", "tolerationSeconds": 5}]},
     "spec.tolerations[0].tolerationSeconds"),
]


@pytest.mark.parametrize(("kind", "spec", "field"), INVALID)
def test_invalid_specs_name_the_field(kind: str, spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        validate(kind_of(kind), "demo", spec)
    assert err.value.field == field, str(err.value)


def test_too_long_name_is_rejected_on_metadata_name() -> None:
    with pytest.raises(SpecError) as err:
        validate(KINDS["GRPORun"], "x" * 60, {})
    assert err.value.field == "metadata.name"


def test_config_map_is_the_same_whichever_spelling() -> None:
    """validate() takes the stage config fields camelCase (the CRD's names) or snake_case (a
    spec built in Python) and writes snake_case into the ConfigMap either way, so a Job's
    config digest does not depend on the spelling."""
    camel = validate(KINDS["GRPORun"], "g", {"numGenerations": 2, "batchSize": 4,
                                              "lora": {"targetModules": ["q_proj"]}})
    snake = validate(KINDS["GRPORun"], "g", {"num_generations": 2, "batch_size": 4,
                                              "lora": {"target_modules": ["q_proj"]}})
    assert camel == snake
    assert camel[2] == {"num_generations": 2, "batch_size": 4,
                        "lora": {"target_modules": ["q_proj"]}}
