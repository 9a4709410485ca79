"""A shared install with two teams, for the attack tests (``test_tenancy_*.py``).

:func:`shared_cluster` starts the Kubernetes API emulator with namespaces ``team-a`` and
``team-b`` and the real operator (``zhufu-operator`` in a subprocess, watching every
namespace) configured as a platform team would configure the chart for several teams: a
bucket with one prefix per namespace (``team-b`` has its own Secret and bucket), Kueue,
an allowed priority class, MLflow credentials by Secret, the LLM server saved judges use,
the one Secret pod overrides may reference (``hf-token``).
Each test then submits the attacker's custom resource in ``team-a`` and checks the outcome.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kube_emulator import KubeEmulator
from opharness import Operator, emulator, wait_for

ATTACKER, VICTIM = "team-a", "team-b"
QUEUE = "team-a-queue"
SETTINGS = {
    "ZHUFU_NAMESPACE": "",  # every namespace, as the chart's cluster-wide mode
    "ZHUFU_S3_BUCKET": "zhufu",
    "ZHUFU_S3_SECRET": "zhufu-s3",
    "ZHUFU_STORAGE": json.dumps({VICTIM: {"secret": "team-b-s3",
                                          "prefix": "s3://team-b-data/models/"}}),
    "ZHUFU_KUEUE": "true",
    "ZHUFU_ALLOWED_PRIORITY_CLASSES": '["team-batch"]',
    "ZHUFU_MLFLOW_SECRET": "zhufu-mlflow-auth",
    "ZHUFU_JUDGE_LLM_URL": "http://zhufu-llm.zhufu.svc:8000/v1",
    "ZHUFU_POD_SECRETS": '["hf-token"]',  # the chart's jobs.podSecrets
}


@dataclass
class Cluster:
    emu: KubeEmulator
    op: Operator

    def submit(self, kind: str, name: str, spec: dict[str, Any], namespace: str = ATTACKER,
               queue: bool = True) -> dict[str, Any]:
        """Create a custom resource (with the namespace's Kueue queue unless told not to)."""
        spec = {"queue": QUEUE, **spec} if queue else spec
        return self.emu.create(f"{kind.lower()}s", {
            "apiVersion": "zhufu.dev/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec})

    def status(self, kind: str, name: str, namespace: str = ATTACKER) -> dict[str, Any]:
        return (self.emu.get(f"{kind.lower()}s", namespace, name) or {}).get("status") or {}

    async def outcome(self, kind: str, name: str, namespace: str = ATTACKER,
                      timeout: float = 20.0) -> dict[str, Any]:
        """The status once the operator made the Job or failed the resource."""
        def done() -> dict[str, Any] | None:
            st = self.status(kind, name, namespace)
            return st if st.get("phase") == "Failed" or st.get("jobName") else None
        return await wait_for(done, f"{kind} {namespace}/{name} handled", timeout, self.op)

    async def refused(self, kind: str, name: str, spec: dict[str, Any],
                      namespace: str = ATTACKER, **kw: Any) -> str:
        """Submit, and return the message of the ``Failed``/``InvalidSpec`` status (checked:
        no Job, and a Warning Event saying the same)."""
        self.submit(kind, name, spec, namespace, **kw)
        st = await self.outcome(kind, name, namespace)
        assert (st.get("phase"), st.get("reason")) == ("Failed", "InvalidSpec"), st
        assert not [j for j in self.emu.objects("jobs", namespace)
                    if j["metadata"]["name"].startswith(f"{name}-")]
        await wait_for(lambda: self.event(name, namespace, st["message"]), "the Warning Event",
                       op=self.op)
        return str(st["message"])

    async def job(self, kind: str, name: str, spec: dict[str, Any],
                  namespace: str = ATTACKER) -> dict[str, Any]:
        """Submit, and return the Job the operator created for it (it must create one)."""
        self.submit(kind, name, spec, namespace)
        st = await self.outcome(kind, name, namespace)
        assert st.get("jobName"), st
        return self.emu.get("jobs", namespace, st["jobName"])

    def config(self, job: dict[str, Any]) -> dict[str, Any]:
        """The stage config the Job's pod reads (its ConfigMap's config.yaml)."""
        import yaml

        ns = job["metadata"]["namespace"]
        cm = self.emu.get("configmaps", ns, f"{job['metadata']['name']}-config")
        return yaml.safe_load(cm["data"]["config.yaml"])

    def event(self, name: str, namespace: str, text: str) -> bool:
        return any((e.get("involvedObject") or {}).get("name") == name
                   and e.get("type") == "Warning" and text in e.get("message", "")
                   for e in self.emu.objects("events", namespace))


def fail_pod(cluster: Cluster, job: dict[str, Any], message: str) -> None:
    """Play the Job controller and kubelet: the Job's pod fails with ``message`` as its
    termination message (its log tail, FallbackToLogsOnError), then the Job fails."""
    meta = job["metadata"]
    pod = cluster.emu.create("pods", {"metadata": {
        "name": f"{meta['name']}-0", "namespace": meta["namespace"],
        "labels": job["spec"]["template"]["metadata"]["labels"],
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                             "uid": meta["uid"], "controller": True}]},
        "spec": job["spec"]["template"]["spec"]})
    cluster.emu.patch("pods", meta["namespace"], pod["metadata"]["name"], {"status": {
        "phase": "Failed", "containerStatuses": [{
            "name": "trainer", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
            "state": {"terminated": {"exitCode": 2, "reason": "Error",
                                     "message": message}}}]}}, status=True)
    cluster.emu.patch("jobs", meta["namespace"], meta["name"], {"status": {
        "failed": 1, "conditions": [{"type": "Failed", "status": "True",
                                     "reason": "BackoffLimitExceeded",
                                     "message": "Job has reached the specified backoff limit",
                                     "lastTransitionTime": "2026-01-01T01:00:00Z"}]}},
        status=True)


def env_of(job: dict[str, Any]) -> dict[str, Any]:
    """The trainer container's env as {name: value or valueFrom}."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@contextlib.asynccontextmanager
async def shared_cluster(workdir: Path, **settings: str) -> AsyncIterator[Cluster]:
    """The emulator with both teams' namespaces, and the operator watching all of them."""
    async with emulator() as (emu, url):
        for ns in (ATTACKER, VICTIM):
            emu.create("namespaces", {"metadata": {"name": ns}})
        op = Operator(workdir, url, {**SETTINGS, **settings})
        op.start()
        try:
            yield Cluster(emu, op)
        finally:
            await op.stop()
