"""The chart's tenancy values reach the operator as the settings it reads, and a
single-namespace install binds its Role in every watched namespace (docs/security.md)."""

from __future__ import annotations

from zhufu.operator.main import kopf_args
from zhufu.operator.settings import OperatorSettings


def _operator_env(rendered, chart) -> dict[str, str]:
    deployment = rendered.named("Deployment", chart.name("operator"))
    return {e["name"]: e.get("value", "") for e in
            deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def _settings(env: dict[str, str], monkeypatch) -> OperatorSettings:
    for name, value in env.items():
        if name.startswith("ZHUFU_"):
            monkeypatch.setenv(name, value)
    return OperatorSettings()


def test_defaults_reach_the_operator(chart, monkeypatch) -> None:
    s = _settings(_operator_env(chart.render(), chart), monkeypatch)
    assert s.s3_prefix("team-a") == "s3://zhufu/team-a/"
    assert s.allowed_image_repositories() == ["ghcr.io/zhufu-dev/zhufu-trainer"]
    assert s.mlflow_name_prefix and not s.kueue and s.allowed_priority_classes == []
    assert s.allowed_tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                      "effect": "NoSchedule"}]
    assert s.judge_llm_url == "" and s.mlflow_secret == ""
    assert s.pod_secrets == []  # a podTemplate references no Secret unless the install says


def test_tenancy_values_reach_the_operator(chart, monkeypatch) -> None:
    rendered = chart.render(
        None, "tenancy.kueue=true", "llm.enabled=true",
        "tenancy.allowedPriorityClasses={team-batch}",
        "tenancy.storage.team-b.secret=team-b-s3",
        "tenancy.storage.team-b.prefix=s3://team-b-data/",
        "mlflow.auth.existingSecret=mlflow-team", "jobs.podSecrets={hf-token}",
        "tenancy.allowedImages={registry.example.com/ml/trainer}")
    s = _settings(_operator_env(rendered, chart), monkeypatch)
    assert s.kueue and s.allowed_priority_classes == ["team-batch"]
    assert (s.s3_prefix("team-b"), s.s3_secret_for("team-b")) == ("s3://team-b-data/",
                                                                  "team-b-s3")
    assert s.s3_secret_for("team-a") == s.s3_secret
    assert s.mlflow_secret == "mlflow-team"
    assert s.judge_llm_url == f"http://{chart.name('llm')}.{chart.namespace}.svc:8000/v1"
    assert s.allowed_image_repositories() == ["registry.example.com/ml/trainer"]
    assert s.pod_secrets == ["hf-token"]


def test_single_namespace_role_per_watched_namespace(chart, monkeypatch) -> None:
    rendered = chart.render(chart.ci("single-namespace"), "rbac.watchNamespaces={team-a,team-b}")
    for kind in ("Role", "RoleBinding"):
        assert sorted(o["metadata"]["namespace"] for o in rendered.of_kind(kind)) == [
            "team-a", "team-b"], kind
    for binding in rendered.of_kind("RoleBinding"):
        assert binding["subjects"][0]["namespace"] == chart.namespace
    env = _operator_env(rendered, chart)
    assert env["ZHUFU_NAMESPACE"] == "team-a,team-b"
    args = kopf_args(_settings(env, monkeypatch))
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a",
                                                                "--namespace=team-b"]
    default = chart.render(chart.ci("single-namespace"))
    assert [o["metadata"]["namespace"] for o in default.of_kind("Role")] == [chart.namespace]
    assert _operator_env(default, chart)["ZHUFU_NAMESPACE"] == chart.namespace
