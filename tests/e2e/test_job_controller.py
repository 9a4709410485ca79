"""The Job controller and kubelet of the one-node cluster, on tiny Python commands.

Each test creates objects in-process and lets the cluster act on its own, then checks what
the real controllers would have written: pods per completion index with the index in env
and annotation, retries within ``backoffLimit`` and the Failed condition past it,
a failed index retried alone within ``backoffLimitPerIndex``, FailedCreate Events for a
missing ServiceAccount or an exceeded quota, Unschedulable for a
GPU request on a node without GPUs, CreateContainerConfigError for a missing Secret, a
deleted running pod counted as a failure and replaced, and two Indexed pods that reach each
other through the headless-Service name of pod 0.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cluster import Cluster

NS = "default"
PY = sys.executable
pytestmark = pytest.mark.integration


def job(name: str, script: str, *, completions: int = 1, indexed: bool = False,
        backoff: int = 0, sa: str = "default", resources: dict[str, Any] | None = None,
        env: list[dict[str, Any]] | None = None, subdomain: str | None = None,
        ports: list[int] = ()) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "x", "command": [PY, "-c", script],
                                 "terminationMessagePolicy": "FallbackToLogsOnError",
                                 "env": env or []}
    if resources:
        container["resources"] = resources
    if ports:
        container["ports"] = [{"containerPort": p} for p in ports]
    spec: dict[str, Any] = {"restartPolicy": "Never", "serviceAccountName": sa,
                            "containers": [container]}
    if subdomain:
        spec["subdomain"] = subdomain
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS},
            "spec": {"completions": completions, "parallelism": completions,
                     "completionMode": "Indexed" if indexed else "NonIndexed",
                     "backoffLimit": backoff, "template": {"spec": spec}}}


async def until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def condition(cluster: Cluster, name: str, ctype: str) -> dict[str, Any] | None:
    obj = cluster.emu.get("jobs", NS, name) or {}
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == ctype and c["status"] == "True":
            return c
    return None


def events(cluster: Cluster, name: str) -> list[tuple[str, str, str, int]]:
    return [(e["type"], e["reason"], e["message"], e.get("count", 1))
            for e in cluster.emu.objects("events", NS) if e["involvedObject"]["name"] == name]


def pods(cluster: Cluster, job_name: str) -> list[dict[str, Any]]:
    return [p for p in cluster.emu.objects("pods", NS)
            if p["metadata"]["labels"].get("job-name") == job_name]


async def test_indexed_job_pods_reach_pod_zero_by_its_service_name(tmp_path: Path) -> None:
    """Pod 0 listens on its declared port; pod 1 connects to ``JOB-0.SUBDOMAIN:PORT``."""
    script = (
        "import os, socket, sys, time\n"
        "i = os.environ['JOB_COMPLETION_INDEX']\n"
        "host, port = sys.argv[1].rsplit(':', 1)\n"
        "if i == '0':\n"
        "    s = socket.socket(); s.bind((host, int(port))); s.listen(1)\n"
        "    c, _ = s.accept(); msg = c.recv(100).decode()\n"
        "else:\n"
        "    for _ in range(100):\n"
        "        try: c = socket.create_connection((host, int(port))); break\n"
        "        except OSError: time.sleep(0.1)\n"
        "    c.sendall(b'hello from 1'); msg = 'sent'\n"
        "open(os.environ['RESULT'], 'w').write(f'index {i}: {msg}')\n")
    spec = job("rdv", script, completions=2, indexed=True, subdomain="rdv", ports=[29500],
               env=[{"name": "RESULT", "value": "/dev/termination-log"}])
    spec["spec"]["template"]["spec"]["containers"][0]["command"].append("rdv-0.rdv:29500")
    async with Cluster(tmp_path) as cluster:
        cluster.emu.create("jobs", spec)
        await until(lambda: condition(cluster, "rdv", "Complete"), "Complete")
        messages = sorted(p["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
                          for p in pods(cluster, "rdv"))
        assert messages == ["index 0: hello from 1", "index 1: sent"]
        status = cluster.emu.get("jobs", NS, "rdv")["status"]
        assert (status["succeeded"], status["completedIndexes"], status["active"]) == (2, "0-1", 0)
        hosts = sorted(p["spec"]["hostname"] for p in pods(cluster, "rdv"))
        assert hosts == ["rdv-0", "rdv-1"]
        assert ("Normal", "Completed", "Job completed", 1) in events(cluster, "rdv")


async def test_retries_within_backoff_limit_then_fails(tmp_path: Path) -> None:
    script = "import sys; print('attempt failed', flush=True); sys.exit(3)"
    async with Cluster(tmp_path) as cluster:
        cluster.emu.create("jobs", job("flaky", script, backoff=1))
        failed = await until(lambda: condition(cluster, "flaky", "Failed"), "Failed")
        assert failed["reason"] == "BackoffLimitExceeded"
        assert condition(cluster, "flaky", "FailureTarget")
        assert cluster.emu.get("jobs", NS, "flaky")["status"]["failed"] == 2
        terms = [p["status"]["containerStatuses"][0]["state"]["terminated"]
                 for p in pods(cluster, "flaky")]
        assert len(terms) == 2 and {t["exitCode"] for t in terms} == {3}
        assert all("attempt failed" in t["message"] for t in terms)  # FallbackToLogsOnError


async def test_a_failed_index_is_retried_alone_within_its_own_limit(tmp_path: Path) -> None:
    """``backoffLimitPerIndex``: index 1 fails every time and is retried alone (once), index 0
    succeeds once; the Job then fails with ``FailedIndexes``."""
    script = ("import os, sys\n"
              "sys.exit(3 if os.environ['JOB_COMPLETION_INDEX'] == '1' else 0)\n")
    spec = job("shards", script, completions=2, indexed=True)
    del spec["spec"]["backoffLimit"]
    spec["spec"]["backoffLimitPerIndex"] = 1
    async with Cluster(tmp_path) as cluster:
        cluster.emu.create("jobs", spec)
        failed = await until(lambda: condition(cluster, "shards", "Failed"), "Failed")
        assert failed["reason"] == "FailedIndexes"
        status = cluster.emu.get("jobs", NS, "shards")["status"]
        assert (status["succeeded"], status["completedIndexes"]) == (1, "0")
        assert (status["failed"], status["failedIndexes"]) == (2, "1")
        indexes = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                         for p in pods(cluster, "shards"))
        assert indexes == ["0", "1", "1"]  # index 0 ran once, index 1 twice


async def test_pods_never_created_post_failed_create_events(tmp_path: Path) -> None:
    async with Cluster(tmp_path, create_retry_s=0.3) as cluster:
        cluster.emu.create("jobs", job("nosa", "pass", sa="zhufu-job"))
        cluster.emu.create("resourcequotas", {"metadata": {"name": "q", "namespace": NS},
                                              "spec": {"hard": {"requests.cpu": "1"}}})
        cluster.emu.create("jobs", job("big", "pass", resources={"requests": {"cpu": "2"}}))
        await until(lambda: any(e[3] >= 2 for e in events(cluster, "nosa")), "a repeat")
        await until(lambda: events(cluster, "big"), "an Event")
        assert pods(cluster, "nosa") == [] and pods(cluster, "big") == []
        (kind, reason, message, _), = events(cluster, "nosa")
        assert (kind, reason) == ("Warning", "FailedCreate")
        assert message == ('Error creating: pods "nosa-" is forbidden: error looking up service '
                           'account default/zhufu-job: serviceaccount "zhufu-job" not found')
        (_, reason, message, _), = events(cluster, "big")
        assert reason == "FailedCreate" and message.endswith(
            "exceeded quota: q, requested: requests.cpu=2, used: requests.cpu=0, "
            "limited: requests.cpu=1"), message
        # the ServiceAccount appears: the next retry creates the pod and the Job completes
        cluster.emu.create("serviceaccounts", {"metadata": {"name": "zhufu-job",
                                                            "namespace": NS}})
        await until(lambda: condition(cluster, "nosa", "Complete"), "Complete")


async def test_unschedulable_and_missing_secret_are_pod_states(tmp_path: Path) -> None:
    secret_env = [{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "k"}}}]
    async with Cluster(tmp_path) as cluster:
        cluster.emu.create("jobs", job("gpu", "pass", resources={
            "requests": {"nvidia.com/gpu": "8"}, "limits": {"nvidia.com/gpu": "8"}}))
        cluster.emu.create("jobs", job("sec", "import os; assert os.environ['KEY'] == 'v'",
                                       env=secret_env))

        def scheduled(name: str) -> dict[str, Any] | None:
            for p in pods(cluster, name):
                for c in (p.get("status") or {}).get("conditions") or []:
                    if c["type"] == "PodScheduled" and c["status"] == "False":
                        return c
            return None

        cond = await until(lambda: scheduled("gpu"), "Unschedulable")
        assert cond["reason"] == "Unschedulable"
        assert "1 Insufficient nvidia.com/gpu" in cond["message"]

        def waiting(name: str) -> dict[str, Any] | None:
            for p in pods(cluster, name):
                for cs in (p.get("status") or {}).get("containerStatuses") or []:
                    if "waiting" in cs["state"]:
                        return cs["state"]["waiting"]
            return None

        state = await until(lambda: waiting("sec"), "a waiting container")
        assert state == {"reason": "CreateContainerConfigError",
                         "message": 'secret "llm" not found'}
        cluster.emu.create("secrets", {"metadata": {"name": "llm", "namespace": NS},
                                       "stringData": {"k": "v"}})
        await until(lambda: condition(cluster, "sec", "Complete"), "Complete after the Secret")


async def test_deleted_running_pod_counts_as_failure_and_is_replaced(tmp_path: Path) -> None:
    async with Cluster(tmp_path) as cluster:
        cluster.emu.create("jobs", job("victim", "import time; time.sleep(60)", backoff=1))
        first = await until(lambda: [p for p in pods(cluster, "victim")
                                     if (p.get("status") or {}).get("phase") == "Running"],
                            "a running pod")
        name = first[0]["metadata"]["name"]
        started = time.monotonic()
        cluster.emu.delete("pods", NS, name)  # like kubectl delete pod (SIGTERM, grace 30 s)
        await until(lambda: cluster.emu.get("pods", NS, name) is None, "the pod gone", 20)
        assert time.monotonic() - started < 10  # SIGTERM ended it well before the grace
        status = await until(lambda: (cluster.emu.get("jobs", NS, "victim")["status"]
                                      if cluster.emu.get("jobs", NS, "victim")["status"].get(
                                          "failed") else None), "the failure counted")
        assert status["failed"] == 1
        await until(lambda: [p for p in pods(cluster, "victim")
                             if p["metadata"]["name"] != name], "a replacement pod")


async def test_pod_failure_policy_fails_the_job_and_foreground_delete_waits(
        tmp_path: Path) -> None:
    """An exit matching ``FailJob`` fails the Job at once (retries left), with the real
    controller's reason and message, and stops its other pod; a foreground DELETE of the
    Job removes it only after its pods are gone. An ``Ignore``d exit code is not counted."""
    policy = {"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
        {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "NotIn",
                                              "values": [0]}}]}
    script = ("import os, sys, time\n"
              "if os.environ['JOB_COMPLETION_INDEX'] == '1': sys.exit(7)\n"
              "time.sleep(60)")
    group = job("group", script, completions=2, indexed=True, backoff=5)
    group["spec"]["podFailurePolicy"] = policy
    ignored = job("ignored", "import sys, time; time.sleep(0.5); sys.exit(3)", backoff=0)
    ignored["spec"]["podFailurePolicy"] = policy
    async with Cluster(tmp_path) as cluster:
        cluster.emu.create("jobs", group)
        cluster.emu.create("jobs", ignored)
        failed = await until(lambda: condition(cluster, "group", "Failed"), "FailJob")
        assert failed["reason"] == "PodFailurePolicy"
        assert failed["message"].startswith("Container c for pod default/group-1-")
        assert failed["message"].endswith("failed with exit code 7 matching FailJob rule at "
                                          "index 1")
        uid = cluster.emu.get("jobs", NS, "group")["metadata"]["uid"]
        await until(lambda: all((p.get("status") or {}).get("phase") == "Failed"
                                for p in pods(cluster, "group")), "pod 0 stopped too")
        cluster.emu.delete("jobs", NS, "group", propagation="Foreground")
        await until(lambda: cluster.emu.get("jobs", NS, "group") is None, "the Job gone")
        assert not [p for p in cluster.emu.objects("pods", NS)
                    if p["metadata"]["ownerReferences"][0]["uid"] == uid]
        # exit 3 is ignored: replaced again and again, never counted, never Failed
        await until(lambda: len([p for p in pods(cluster, "ignored")
                                 if (p.get("status") or {}).get("phase") == "Failed"]) >= 2,
                    "two ignored failures")
        st = cluster.emu.get("jobs", NS, "ignored")["status"]
        assert not st.get("failed") and not condition(cluster, "ignored", "Failed")


async def test_deployment_pod_that_cannot_start_backs_off_in_place(tmp_path: Path) -> None:
    """A missing executable restarts the container in the same pod (CrashLoopBackOff,
    growing restartCount), never a stream of new pods."""
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "broken", "namespace": NS},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "broken"}},
                    "template": {"metadata": {"labels": {"app": "broken"}}, "spec": {
                        "containers": [{"name": "c", "image": "x",
                                        "command": ["no-such-binary-here"]}]}}}}
    async with Cluster(tmp_path) as cluster:
        cluster.emu.create("deployments", dep)

        def restarted() -> dict[str, Any] | None:
            for p in cluster.emu.objects("pods", NS):
                cs = ((p.get("status") or {}).get("containerStatuses") or [{}])[0]
                if cs.get("restartCount", 0) >= 2:
                    return cs
            return None

        cs = await until(restarted, "two restarts", 20)
        assert cs["lastState"]["terminated"]["reason"] == "StartError"
        assert len(cluster.emu.objects("pods", NS)) == 1
        status = cluster.emu.get("deployments", NS, "broken")["status"]
        assert (status["replicas"], status["readyReplicas"]) == (1, 0)
