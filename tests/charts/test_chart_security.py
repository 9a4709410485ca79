"""Every pod the chart renders is hardened, and no secret value leaks out of its Secret.

Checked over every CI values file (all-in-one renders the MLflow, MinIO and bucket-Job pods):
non-root, read-only root filesystem, all capabilities dropped, no privilege escalation,
RuntimeDefault seccomp, resource limits; secret values appear only in the Secret itself,
never in a ConfigMap, a plain env value, args or annotations. Rendered output, no cluster.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "zhufu"
CI_VALUES = sorted((CHART_DIR / "ci").glob("*-values.yaml"))
IDS = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]
SECRETISH = ("KEY", "SECRET", "PASSWORD", "TOKEN", "CREDENTIAL")
#: Operator settings that hold the *name* of a Secret (which job pods reference), no value.
SECRET_NAMES = ("ZHUFU_S3_SECRET", "ZHUFU_MLFLOW_SECRET", "ZHUFU_IMAGE_PULL_SECRETS",
                "ZHUFU_POD_SECRETS")


def _effective(pod: dict, container: dict, field: str):
    """A container's securityContext field, else the pod's (Kubernetes precedence)."""
    own = (container.get("securityContext") or {}).get(field)
    return own if own is not None else (pod.get("securityContext") or {}).get(field)


@pytest.mark.parametrize("values", CI_VALUES, ids=IDS)
def test_every_container_is_hardened(chart, values: Path) -> None:
    pods = list(chart.render(values).pod_specs())
    assert pods
    for where, pod in pods:
        assert pod.get("hostNetwork") is not True and pod.get("hostPID") is not True, where
        for c in pod.get("initContainers", []) + pod["containers"]:
            at = f"{values.name}: {where}/{c['name']}"
            sc = c.get("securityContext") or {}
            assert _effective(pod, c, "runAsNonRoot") is True, at
            uid = _effective(pod, c, "runAsUser")
            assert isinstance(uid, int) and uid >= 10000, f"{at}: runAsUser {uid}"
            assert sc.get("readOnlyRootFilesystem") is True, at
            assert sc.get("allowPrivilegeEscalation") is False, at
            assert sc.get("privileged") in (None, False), at
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], at
            assert not sc.get("capabilities", {}).get("add"), at
            assert _effective(pod, c, "seccompProfile") == {"type": "RuntimeDefault"}, at
            limits = (c.get("resources") or {}).get("limits") or {}
            assert {"cpu", "memory"} <= set(limits), f"{at}: limits {limits}"
            assert ":" in c["image"] and not c["image"].endswith(":latest"), at


def test_hardening_check_fails_on_a_root_container(chart) -> None:
    """The check above rejects a pod that runs as root (so it can fail)."""
    r = chart.render(None, "operator.securityContext.runAsUser=0",
                     "operator.podSecurityContext.runAsUser=0")
    _, pod = next(iter(r.pod_specs()))
    assert _effective(pod, pod["containers"][0], "runAsUser") == 0


def _secret_values(rendered) -> list[str]:
    values = []
    for s in rendered.of_kind("Secret"):
        values += [base64.b64decode(v).decode() for v in (s.get("data") or {}).values()]
        values += list((s.get("stringData") or {}).values())
    return values


def test_generated_credentials_stay_in_their_secret(chart) -> None:
    rendered = chart.render(chart.ci("all-in-one"))
    planted = _secret_values(rendered)
    assert len(planted) == 2 and max(len(v) for v in planted) >= 20  # user, password
    for doc in rendered.docs:
        if doc["kind"] == "Secret":
            continue
        text = repr(doc)
        for value in planted:
            assert value not in text, f"secret value leaked into {doc['kind']}"
            encoded = base64.b64encode(value.encode()).decode()
            assert encoded not in text, f"encoded secret leaked into {doc['kind']}"


@pytest.mark.parametrize("values", CI_VALUES, ids=IDS)
def test_secret_env_comes_from_secret_refs(chart, values: Path) -> None:
    """Credentials reach containers only through secretKeyRef, never as a plain value, and
    the chart renders no ConfigMap holding anything secret."""
    rendered = chart.render(values)
    for where, pod in rendered.pod_specs():
        for c in pod.get("initContainers", []) + pod["containers"]:
            for e in c.get("env", []):
                name = e["name"].upper()
                if any(word in name for word in SECRETISH) and name not in SECRET_NAMES:
                    assert "value" not in e and "secretKeyRef" in e["valueFrom"], (
                        f"{values.name}: {where}/{c['name']} env {e['name']}")
    for cm in rendered.of_kind("ConfigMap"):
        for key in cm.get("data") or {}:
            assert not any(word in key.upper() for word in SECRETISH), f"ConfigMap key {key}"


@pytest.mark.parametrize("values", CI_VALUES, ids=IDS)
def test_network_policy_selects_every_release_pod(chart, values: Path) -> None:
    """One NetworkPolicy admits ingress only to the MLflow/MinIO/LLM ports, and every pod the
    chart renders is selected by it (so nothing else can be reached)."""
    r = chart.render(values)
    (policy,) = r.of_kind("NetworkPolicy")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for where, _pod in r.pod_specs():
        doc = next(d for d in r.docs if f"{d['kind']}/{d['metadata']['name']}" == where)
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), f"{where} is not selected"
    ports = sorted(p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"])
    servers = {n: any(d["metadata"]["name"].endswith(f"-{n}") and d["kind"] == "Service"
                      for d in r.docs) for n in ("mlflow", "minio", "llm")}
    assert ports == sorted(port for n, port in (("mlflow", 5000), ("minio", 9000),
                                                ("llm", 8000)) if servers[n])
    assert policy["spec"]["policyTypes"] == ["Ingress"]
