"""spec.podTemplate: the merge rules, the layer order, and the hardening no override undoes.

Every rendered Job is checked with ``kubernetes-validate --strict`` (Kubernetes 1.37 schemas):
the overrides pass through as free-form objects, so the merged pod must still be valid.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from zhufu.operator import builders, overrides
from zhufu.operator.crds import crd, to_jsonschema
from zhufu.operator.settings import OperatorSettings
from zhufu.operator.spec import KINDS
from zhufu.operator.validation import SpecError, validate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/overrides/grporun-model-cache.yaml"
SETTINGS = OperatorSettings(
    default_node_selector={"pool": "gpu", "zone": "a"},
    default_tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    default_priority_class="batch", image_pull_secrets=["regcred"])


def _pod(spec: dict[str, Any], kind: str = "GRPORun",
         settings: OperatorSettings = SETTINGS) -> dict[str, Any]:
    k = KINDS[kind]
    workload, _, config = validate(k, "r1", spec)
    job = builders.job(k, "r1", "team-a", workload, config, settings)
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    return job["spec"]["template"]


def _trainer(template: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in template["spec"]["containers"] if c["name"] == "trainer")


def test_merge_rules() -> None:
    """Maps merged, lists appended, named objects replaced in place, scalars replaced."""
    base = {"labels": {"a": "1"}, "tolerations": [{"key": "x"}], "schedulerName": "default",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "volumeMounts": [{"name": "cache", "mountPath": "/c"}],
            "containers": [{"name": "t", "env": [{"name": "A", "value": "1"}], "image": "i"}]}
    over = {"labels": {"b": "2"}, "tolerations": [{"key": "y"}, {"key": "x"}],
            "schedulerName": "volcano",
            "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "volumeMounts": [{"name": "pvc", "mountPath": "/c"}],
            "containers": [{"name": "t", "env": [{"name": "C", "value": "3"}]}]}
    before = copy.deepcopy(base)
    out = overrides.merge(base, over)
    assert base == before  # inputs untouched
    assert out["labels"] == {"a": "1", "b": "2"}
    assert out["tolerations"] == [{"key": "x"}, {"key": "y"}]  # a repeated one is not doubled
    assert out["schedulerName"] == "volcano"
    assert out["env"] == [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                          {"name": "B", "value": "2"}]  # replaced whole, not mixed
    assert out["volumeMounts"] == [{"name": "pvc", "mountPath": "/c"}]
    assert out["containers"] == [{"name": "t", "image": "i", "env": [
        {"name": "A", "value": "1"}, {"name": "C", "value": "3"}]}]


def test_layers_defaults_then_shorthands_then_pod_template() -> None:
    template = _pod({
        "nodeSelector": {"pool": "h100"},
        "tolerations": [{"key": "team", "operator": "Exists"}],
        "priorityClassName": "high",
        "podTemplate": {"spec": {
            "nodeSelector": {"zone": "b"},
            "tolerations": [{"key": "spot", "operator": "Exists"}],
            "priorityClassName": "urgent",
            "runtimeClassName": "nvidia", "schedulerName": "volcano",
            "imagePullSecrets": [{"name": "mirror"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "gpu", "operator": "In", "values": ["h100"]}]}]}}}}}})
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "h100", "zone": "b"}
    assert [t["key"] for t in pod["tolerations"]] == ["gpu", "team", "spot"]
    assert pod["priorityClassName"] == "urgent"
    assert (pod["runtimeClassName"], pod["schedulerName"]) == ("nvidia", "volcano")
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]
    assert "nodeAffinity" in pod["affinity"]
    # without a podTemplate the shorthands win over the defaults, maps merged
    plain = _pod({"nodeSelector": {"pool": "h100"}, "priorityClassName": "high"})["spec"]
    assert plain["nodeSelector"] == {"pool": "h100", "zone": "a"}
    assert plain["priorityClassName"] == "high"


def test_container_overrides_by_name() -> None:
    template = _pod({"resources": {"gpus": 1, "memory": "16Gi"}, "podTemplate": {
        "metadata": {"labels": {"team": "nlp"}, "annotations": {"owner": "me"}},
        "spec": {
            "volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": "models"}}],
            "containers": [{
                "name": "trainer",
                "env": [{"name": "HF_HOME", "value": "/models"},
                        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
                            "name": "hf", "key": "token"}}}],
                "envFrom": [{"configMapRef": {"name": "proxy"}}],
                "volumeMounts": [{"name": "cache", "mountPath": "/models"}],
                "resources": {"limits": {"ephemeral-storage": "50Gi"}}}]}}})
    assert template["metadata"]["labels"]["team"] == "nlp"
    assert template["metadata"]["labels"]["zhufu.dev/job"] == "r1-grpo"
    assert template["metadata"]["annotations"] == {"owner": "me"}
    c = _trainer(template)
    env = {e["name"]: e for e in c["env"]}
    assert env["HF_HOME"] == {"name": "HF_HOME", "value": "/models"}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf", "key": "token"}
    assert [e["name"] for e in c["env"]].count("HF_HOME") == 1
    assert c["envFrom"] == [{"configMapRef": {"name": "proxy"}}]
    assert {"name": "cache", "mountPath": "/models"} in c["volumeMounts"]
    assert c["resources"]["limits"] == {"memory": "16Gi", "nvidia.com/gpu": "1",
                                        "ephemeral-storage": "50Gi"}
    vols = {v["name"]: v for v in template["spec"]["volumes"]}
    assert vols["cache"] == {"name": "cache", "persistentVolumeClaim": {"claimName": "models"}}
    assert c["securityContext"] == builders.container_security(SETTINGS)


def test_the_example_mounts_a_model_cache() -> None:
    doc = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    claim = yaml.safe_load((EXAMPLE.parent / "model-cache-pvc.yaml").read_text(encoding="utf-8"))
    kubernetes_validate.validate(claim, "1.37.0", strict=True)
    template = _pod(doc["spec"])
    c = _trainer(template)
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
              for v in template["spec"]["volumes"] if "persistentVolumeClaim" in v}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    env = {e["name"]: e for e in c["env"]}
    hf_home = env["HF_HOME"]["value"]
    assert claims == {"model-cache": claim["metadata"]["name"]}
    assert mounts["model-cache"] == hf_home
    assert env["NCCL_DEBUG"] == {"name": "NCCL_DEBUG", "value": "WARN"}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}
    # and the CRD schema keeps the free-form parts (the API server would prune them otherwise)
    schema = to_jsonschema(crd(KINDS["GRPORun"])["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    jsonschema.Draft4Validator(schema).validate(doc)
    field = crd(KINDS["GRPORun"])["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"]["spec"]["properties"]["podTemplate"]["properties"]["spec"]["properties"]
    assert field["volumes"]["items"]["x-kubernetes-preserve-unknown-fields"] is True


HARDENING = [
    ({"spec": {"hostNetwork": True}}, "spec.podTemplate.spec.hostNetwork"),
    ({"spec": {"hostPID": True}}, "spec.podTemplate.spec.hostPID"),
    ({"spec": {"hostIPC": True}}, "spec.podTemplate.spec.hostIPC"),
    ({"spec": {"automountServiceAccountToken": True}},
     "spec.podTemplate.spec.automountServiceAccountToken"),
    ({"spec": {"serviceAccountName": "admin"}}, "spec.podTemplate.spec.serviceAccountName"),
    ({"spec": {"securityContext": {"runAsUser": 0}}}, "spec.podTemplate.spec.securityContext"),
    ({"spec": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}},
     "spec.podTemplate.spec.volumes[0].hostPath"),
    ({"spec": {"containers": [{"name": "trainer", "securityContext": {"privileged": True}}]}},
     "spec.podTemplate.spec.containers[0].securityContext"),
    ({"spec": {"containers": [{"name": "trainer", "privileged": True}]}},
     "spec.podTemplate.spec.containers[0].privileged"),
    ({"spec": {"containers": [{"name": "trainer", "runAsUser": 0}]}},
     "spec.podTemplate.spec.containers[0].runAsUser"),
    ({"spec": {"containers": [{"name": "trainer", "runAsNonRoot": False}]}},
     "spec.podTemplate.spec.containers[0].runAsNonRoot"),
    ({"spec": {"containers": [{"name": "trainer", "allowPrivilegeEscalation": True}]}},
     "spec.podTemplate.spec.containers[0].allowPrivilegeEscalation"),
]


@pytest.mark.parametrize(("pod_template", "field"), HARDENING, ids=[f for _, f in HARDENING])
def test_overrides_cannot_undo_the_hardening(pod_template: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        validate(KINDS["GRPORun"], "r1", {"podTemplate": pod_template})
    assert err.value.field == field
    assert "refused" in err.value.message


@pytest.mark.parametrize(("pod_template", "field", "why"), [
    ({"metadata": {"labels": {"zhufu.dev/job": "other"}}},
     "spec.podTemplate.metadata.labels[zhufu.dev/job]", "finds the Job's pods"),
    ({"spec": {"volumes": [{"name": "config", "emptyDir": {}}]}},
     "spec.podTemplate.spec.volumes[0].name", "operator's volume"),
    ({"spec": {"containers": [{"name": "trainer", "env": [{"name": "ZHUFU_RESULT_FILE",
                                                            "value": "/x"}]}]}},
     "spec.podTemplate.spec.containers[0].env[0].name", "reports through it"),
    ({"spec": {"containers": [{"name": "trainer", "env": [{"name": "ZHUFU_JOB_UID",
                                                            "value": "x"}]}]}},
     "spec.podTemplate.spec.containers[0].env[0].name", "reports through it"),
    ({"spec": {"containers": [{"name": "sidecar", "env": []}]}},
     "spec.podTemplate.spec.containers[0].name", "no container 'sidecar'"),
])
def test_overrides_cannot_break_the_wiring(pod_template: dict[str, Any], field: str,
                                           why: str) -> None:
    with pytest.raises(SpecError) as err:
        validate(KINDS["CurationJob"], "r1", {"podTemplate": pod_template})
    assert err.value.field == field and why in err.value.message


def test_merged_template_is_checked_again() -> None:
    """pod_template() refuses a result that is not hardened whatever the layers were (the
    function other modules call, e.g. with layers that never went through check())."""
    base = {"metadata": {}, "spec": {
        "automountServiceAccountToken": False, "securityContext": {"runAsNonRoot": True},
        "containers": [{"name": "trainer", "securityContext": builders.container_security(
            SETTINGS)}]}}
    assert overrides.pod_template(base, None, {"spec": {"nodeSelector": {"a": "b"}}})
    for layer, problem in (
            ({"spec": {"hostNetwork": True}}, "spec.hostNetwork is set"),
            ({"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}}, "hostPath"),
            ({"spec": {"containers": [{"name": "trainer", "securityContext": {"runAsUser": 0}}]}},
             "may run as root"),
            ({"spec": {"automountServiceAccountToken": True}}, "automountServiceAccountToken")):
        with pytest.raises(overrides.OverrideError, match=problem):
            overrides.pod_template(base, layer)


@pytest.mark.parametrize(("pod_template", "field"), [
    ("hostNetwork", "spec.podTemplate"),
    ({"spec": {"volumes": "cache"}}, "spec.podTemplate.spec.volumes"),
    ({"spec": {"containers": [{"name": "trainer", "env": ["HF_TOKEN"]}]}},
     "spec.podTemplate.spec.containers[0].env[0]"),
])
def test_wrong_shapes_are_spec_errors(pod_template: Any, field: str) -> None:
    """A podTemplate of the wrong shape is named by the schema check, not a crash."""
    with pytest.raises(SpecError) as err:
        validate(KINDS["GRPORun"], "r1", {"podTemplate": pod_template})
    assert err.value.field == field


def test_the_crd_schema_refuses_what_it_does_not_list() -> None:
    """kubectl's strict validation already refuses hardening fields the schema does not list
    (hostNetwork, a container securityContext); a hostPath inside a free-form volume passes
    the schema, which is why the operator checks it."""
    schema = to_jsonschema(crd(KINDS["GRPORun"])["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    validator = jsonschema.Draft4Validator(schema)

    def errors(pod_template: dict[str, Any]) -> list[str]:
        cr = {"apiVersion": "zhufu.dev/v1alpha1", "kind": "GRPORun", "metadata": {"name": "r"},
              "spec": {"podTemplate": pod_template}}
        return [e.message for e in validator.iter_errors(cr)]

    assert errors({"spec": {"hostNetwork": True}})
    assert errors({"spec": {"containers": [{"name": "trainer", "securityContext": {}}]}})
    assert not errors({"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}})


def test_zhufu_operator_render_shows_the_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """``zhufu operator render -f`` on the example prints the Job with the overrides merged,
    HF_TOKEN from the Secret the install lists (the chart's jobs.podSecrets); without that
    listing the same resource is refused, naming the field and the Secret."""
    from typer.testing import CliRunner

    from zhufu.pipeline.cli import app

    args = ["operator", "render", "-f", str(EXAMPLE), "-n", "zhufu"]
    monkeypatch.delenv("ZHUFU_POD_SECRETS", raising=False)
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2, refused.output
    assert ("spec.podTemplate.spec.containers[0].env[0].valueFrom.secretKeyRef: refused: "
            "Secret 'hf-token' is not one pod overrides may reference; this install allows: "
            "none") in refused.output, refused.output
    monkeypatch.setenv("ZHUFU_POD_SECRETS", '["hf-token"]')
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    (job,) = [d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "Job"]
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "nlp"
    c = _trainer(template)
    assert {"name": "model-cache", "mountPath": "/var/cache/zhufu/huggingface"} in c[
        "volumeMounts"]
    assert any(e["name"] == "NCCL_DEBUG" for e in c["env"])
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token",
                                                               "key": "token"}}} in c["env"]
