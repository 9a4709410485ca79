"""Whole-group restarts of a GRPORun, by the real operator over HTTP against the emulator.

The test plays the Job controller: it fails the Job the way the real one does when a
``podFailurePolicy`` ``FailJob`` rule matched (condition ``Failed``, reason
``PodFailurePolicy``), and removes the pods' ``job-tracking`` finalizer when it lets them go.
Proven: the operator counts the restart (``status.restarts``, the ``Restarted`` condition, a
Warning Event), deletes the failed Job in the foreground and creates the new one only after
the old pods are gone; every Job of the resource gives its pods the resource's uid as
``ZHUFU_JOB_UID`` (so the new pods skip the steps the old ones finished); after
``spec.maxRestarts`` the GRPORun is Failed naming the last failure; a Job failed for another
reason (``BackoffLimitExceeded``) is not restarted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kube_emulator import KubeEmulator
from opharness import (
    NS,
    Operator,
    emulator,
    events_for,
    job_condition,
    phase_is,
    pod_status,
    start_pods,
    status,
    wait_for,
)

from zhufu.operator.builders import RESTART_ANNOTATION, RUN_UID_ENV

TRACKING = "batch.kubernetes.io/job-tracking"
JOB = "group-grpo"
FAILURE = ("Container trainer for pod default/{pod} failed with exit code 137 matching FailJob "
           "rule at index 1")


def _grporun(name: str, **extra: Any) -> dict[str, Any]:
    spec = {"judgeRef": "models:/zhufu-judge/3", "nodes": 2, **extra}
    return {"apiVersion": "zhufu.dev/v1alpha1", "kind": "GRPORun",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def _run_uid(job: dict[str, Any]) -> str | None:
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    return next(v.get("value") for v in env if v["name"] == RUN_UID_ENV)


def _fail_group(emu: KubeEmulator, job_name: str, reason: str = "PodFailurePolicy") -> str:
    """Start the Job's pods (holding the Job controller's finalizer), let pod 1's trainer be
    killed, and fail the Job as the controller does; returns the Job's uid."""
    pods = start_pods(emu, job_name)
    for pod in pods:
        emu.patch("pods", NS, pod["metadata"]["name"], {"metadata": {"finalizers": [TRACKING]}})
    pod_status(emu, pods[0]["metadata"]["name"], "Running")
    pod_status(emu, pods[1]["metadata"]["name"], "Failed", terminated={
        "exitCode": 137, "reason": "Error", "message": "Killed"})
    job_condition(emu, job_name, "Failed", reason,
                  FAILURE.format(pod=pods[1]["metadata"]["name"]))
    return emu.get("jobs", NS, job_name)["metadata"]["uid"]


def _release_pods(emu: KubeEmulator) -> None:
    """The Job controller lets the old pods go (its finalizer off), so they can be deleted."""
    for pod in emu.objects("pods", NS):
        if TRACKING in (pod["metadata"].get("finalizers") or []):
            emu.patch("pods", NS, pod["metadata"]["name"], {"metadata": {"finalizers": None}})


def _new_job(emu: KubeEmulator, old_uid: str, name: str = JOB) -> Any:
    """A check: the Job ``name`` exists with another uid than ``old_uid``."""
    def check() -> dict[str, Any] | None:
        job = emu.get("jobs", NS, name)
        return job if job and job["metadata"]["uid"] != old_uid else None
    return check


async def test_group_failure_restarts_the_whole_job_then_gives_up(tmp_path: Path) -> None:
    async with emulator() as (emu, url):
        op = Operator(tmp_path, url, {})
        op.start()
        try:
            emu.create("grporuns", _grporun("group", maxRestarts=2))
            await wait_for(lambda: emu.get("jobs", NS, JOB), "the first Job", op=op)
            first = emu.get("jobs", NS, JOB)
            owner_uid = emu.get("grporuns", NS, "group")["metadata"]["uid"]
            assert first["metadata"]["annotations"][RESTART_ANNOTATION] == "0"
            assert _run_uid(first) == owner_uid
            rules = first["spec"]["podFailurePolicy"]["rules"]
            assert [r["action"] for r in rules] == ["FailJob", "FailJob"]

            # Restart 1: the old Job waits (foreground) until its pods are gone.
            old_uid = _fail_group(emu, JOB)
            await wait_for(phase_is(emu, "grporuns", "group", "Pending", "Restarting"),
                           "Restarting", op=op)
            await wait_for(lambda: (emu.get("jobs", NS, JOB) or {}).get("metadata", {}).get(
                "deletionTimestamp"), "the Job deleted in the foreground", op=op)
            st = status(emu, "grporuns", "group")
            assert st["restarts"] == 1 and "restart 1 of 2" in st["message"]
            assert "exit code 137" in st["message"]
            restarted = {c["type"]: c for c in st["conditions"]}["Restarted"]
            assert restarted["status"] == "True" and "restart 1 of 2" in restarted["message"]
            old = emu.get("jobs", NS, JOB)
            assert old["metadata"]["uid"] == old_uid  # still there: its pods hold it
            assert "foregroundDeletion" in old["metadata"]["finalizers"]
            assert len(emu.objects("pods", NS)) == 2
            _release_pods(emu)
            second = await wait_for(_new_job(emu, old_uid), "the Job created again", op=op)
            assert not [p for p in emu.objects("pods", NS)
                        if p["metadata"]["ownerReferences"][0]["uid"] == old_uid]
            assert second["metadata"]["annotations"][RESTART_ANNOTATION] == "1"
            assert _run_uid(second) == owner_uid
            assert second["spec"]["template"] == {
                **first["spec"]["template"], "metadata": second["spec"]["template"]["metadata"]}
            assert ("Warning", "Restarting", st["message"]) in events_for(emu, "group")
            await wait_for(lambda: ("Normal", "JobCreated", f"created Job {JOB} (restart 1)")
                           in events_for(emu, "group"), "the JobCreated Event", op=op)

            # The new group runs: Running again, the restart count stays.
            pods = start_pods(emu, JOB)
            pod_status(emu, pods[0]["metadata"]["name"], "Running")
            await wait_for(phase_is(emu, "grporuns", "group", "Running"), "Running again",
                           op=op)
            assert status(emu, "grporuns", "group")["restarts"] == 1
            for pod in pods:
                emu.delete("pods", NS, pod["metadata"]["name"])

            # Restart 2, then the third failure is one too many (maxRestarts: 2).
            second_uid = _fail_group(emu, JOB)
            _release_pods(emu)
            third = await wait_for(_new_job(emu, second_uid), "restart 2", op=op)
            assert third["metadata"]["annotations"][RESTART_ANNOTATION] == "2"
            assert status(emu, "grporuns", "group")["restarts"] == 2
            third_uid = _fail_group(emu, JOB)
            await wait_for(phase_is(emu, "grporuns", "group", "Failed",
                                    "RestartLimitExceeded"), "Failed after 2 restarts", op=op)
            st = status(emu, "grporuns", "group")
            assert st["restarts"] == 2
            assert "after 2 restart(s) (spec.maxRestarts: 2); last failure:" in st["message"]
            assert "exit code 137" in st["message"]
            assert {c["type"]: c for c in st["conditions"]}["Failed"]["status"] == "True"
            job = emu.get("jobs", NS, JOB)
            assert job["metadata"]["uid"] == third_uid
            assert not job["metadata"].get("deletionTimestamp")  # kept for its logs
            await wait_for(lambda: sum(e[2].startswith(f"created Job {JOB}")
                                       for e in events_for(emu, "group")) == 3,
                           "three Jobs created", op=op)
            await wait_for(lambda: "RestartLimitExceeded" in [e[1] for e in events_for(
                emu, "group")], "the RestartLimitExceeded Event", op=op)
            assert [e[1] for e in events_for(emu, "group")].count("Restarting") == 2
        finally:
            await op.stop()


async def test_other_failures_and_single_node_runs(tmp_path: Path) -> None:
    """A Job that ran out of pod retries (BackoffLimitExceeded) is not restarted; a single-node
    GRPORun is restarted the same way, with the default limit (its disrupted pod is left to
    the Job controller to replace: ``Ignore``)."""
    async with emulator() as (emu, url):
        op = Operator(tmp_path, url, {})
        op.start()
        try:
            emu.create("grporuns", _grporun("group"))
            await wait_for(lambda: emu.get("jobs", NS, JOB), "the Job", op=op)
            _fail_group(emu, JOB, reason="BackoffLimitExceeded")
            await wait_for(phase_is(emu, "grporuns", "group", "Failed", "BackoffLimitExceeded"),
                           "Failed without a restart", op=op)
            assert "restarts" not in status(emu, "grporuns", "group")

            emu.create("grporuns", _grporun("solo", nodes=1))
            await wait_for(lambda: emu.get("jobs", NS, "solo-grpo"), "the solo Job", op=op)
            solo = emu.get("jobs", NS, "solo-grpo")
            rules = solo["spec"]["podFailurePolicy"]["rules"]
            assert [r["action"] for r in rules] == ["Ignore", "FailJob"]
            pods = start_pods(emu, "solo-grpo")
            pod_status(emu, pods[0]["metadata"]["name"], "Failed", terminated={
                "exitCode": 1, "reason": "Error", "message": "Traceback: RuntimeError"})
            job_condition(emu, "solo-grpo", "Failed", "PodFailurePolicy", "exit code 1")
            await wait_for(_new_job(emu, solo["metadata"]["uid"], "solo-grpo"),
                           "the solo Job created again", op=op)
            st = status(emu, "grporuns", "solo")
            assert st["restarts"] == 1
            assert {c["type"]: c for c in st["conditions"]}["Restarted"]["message"].startswith(
                "restart 1 of 3:")
        finally:
            await op.stop()

