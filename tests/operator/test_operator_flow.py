"""The real operator (``kopf run`` in a subprocess) over HTTP against the kmock-based emulator.

No real cluster can run on this machine: ``kube_emulator.KubeEmulator`` stands in for the API
server and the tests play the Job controller and the kubelet by creating pods and writing
Job/pod statuses. What is proven: CRs become ConfigMaps + Jobs owned by them; statuses and
Events follow the Job and its pods with actionable reasons; a GRPORun waits for its
dependencies and takes their registered models; invalid specs fail naming the field; a spec
change after start is recorded, not applied; deletion removes the children; a restart in the
middle of a reconcile creates no second Job.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from opharness import (
    NS,
    Operator,
    emulator,
    events_for,
    finish,
    job_condition,
    phase_is,
    pod_status,
    start_pods,
    status,
    wait_for,
)

from zhufu.pipeline.results import StageResult

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "crs"


def _example(kind: str) -> dict[str, Any]:
    for p in EXAMPLES.glob("*.yaml"):
        doc = yaml.safe_load(p.read_text())
        if doc["kind"] == kind:
            doc["metadata"]["namespace"] = NS
            return doc
    raise KeyError(kind)


def _cr(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "zhufu.dev/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def _jobs(emu: Any) -> list[str]:
    return sorted(j["metadata"]["name"] for j in emu.objects("jobs", NS))


async def test_whole_flow_dependencies_status_events_and_delete(tmp_path: Path) -> None:
    async with emulator() as (emu, url):
        op = Operator(tmp_path, url, {})
        op.start()
        try:
            cj, jt, gr = (_example(k) for k in ("CurationJob", "JudgeTraining", "GRPORun"))
            for plural, doc in (("grporuns", gr), ("judgetrainings", jt), ("curationjobs", cj)):
                emu.create(plural, doc)
            await wait_for(lambda: {"greetings-curation-curate", "greetings-judge-judge"} <= set(
                _jobs(emu)), "the CurationJob and JudgeTraining Jobs", op=op)
            await wait_for(phase_is(emu, "grporuns", "greetings-grpo", "Waiting",
                                    "WaitingForDependency"), "GRPORun waiting", op=op)
            assert "greetings-grpo-grpo" not in _jobs(emu)
            # Children are owned by their resource (GC on a real cluster).
            job = emu.get("jobs", NS, "greetings-judge-judge")
            owner = emu.get("judgetrainings", NS, "greetings-judge")
            assert job["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
            assert emu.get("configmaps", NS, "greetings-judge-judge-config")

            # Play the Job controller + kubelet for the JudgeTraining.
            pods = start_pods(emu, "greetings-judge-judge")
            pod_status(emu, pods[0]["metadata"]["name"], "Running")
            await wait_for(phase_is(emu, "judgetrainings", "greetings-judge", "Running"),
                           "JudgeTraining Running", op=op)
            result = StageResult("judge-train", mlflow_run_id="run-judge-1",
                                 outputs={"model": "s3://zhufu/outputs/judge-train/run-judge-1"},
                                 registered={"zhufu-judge": "3"}, metrics={"dev_accuracy": 0.94})
            finish(emu, "greetings-judge-judge", result.to_json())
            await wait_for(phase_is(emu, "judgetrainings", "greetings-judge", "Succeeded"),
                           "JudgeTraining Succeeded", op=op)
            st = status(emu, "judgetrainings", "greetings-judge")
            assert st["mlflowRunId"] == "run-judge-1" and st["registered"] == {"zhufu-judge": "3"}
            assert st["metrics"] == {"dev_accuracy": 0.94} and st["completionTime"]
            assert st["observedGeneration"] == 1

            # The GRPORun still waits: the curation is not done.
            assert status(emu, "grporuns", "greetings-grpo")["phase"] == "Waiting"
            start_pods(emu, "greetings-curation-curate")
            finish(emu, "greetings-curation-curate", StageResult(
                "curate", mlflow_run_id="run-cur-1", registered={"zhufu-reward": "2"}).to_json())
            await wait_for(lambda: "greetings-grpo-grpo" in _jobs(emu), "GRPO Job released",
                           op=op)
            config = yaml.safe_load(emu.get("configmaps", NS, "greetings-grpo-grpo-config")[
                "data"]["config.yaml"])
            models = {r["name"]: r.get("model") for r in config["rewards"]}
            assert models == {"judge": "models:/zhufu-judge/3", "rm": "models:/zhufu-reward/2",
                              "format": None}
            # status.resolved says which model each dependency gave, for lineage
            assert status(emu, "grporuns", "greetings-grpo")["resolved"] == {
                "judge": "models:/zhufu-judge/3", "rm": "models:/zhufu-reward/2"}
            assert emu.get("services", NS, "greetings-grpo-grpo")["spec"]["clusterIP"] == "None"

            # Pod problems become actionable reasons, then the Job fails.
            grpo_pods = start_pods(emu, "greetings-grpo-grpo")
            pod_status(emu, grpo_pods[0]["metadata"]["name"], "Pending", waiting={
                "reason": "ImagePullBackOff", "message": "pull access denied"})
            await wait_for(phase_is(emu, "grporuns", "greetings-grpo", "Pending",
                                    "ImagePullBackOff"), "ImagePullBackOff reason", op=op)
            pod_status(emu, grpo_pods[1]["metadata"]["name"], "Failed", terminated={
                "exitCode": 137, "reason": "OOMKilled", "message": "killed"})
            job_condition(emu, "greetings-grpo-grpo", "Failed", "BackoffLimitExceeded",
                          "Job has reached the specified backoff limit")
            await wait_for(phase_is(emu, "grporuns", "greetings-grpo", "Failed",
                                    "BackoffLimitExceeded"), "GRPORun Failed", op=op)
            conds = {c["type"]: c for c in status(emu, "grporuns", "greetings-grpo")["conditions"]}
            assert conds["Failed"]["status"] == "True"
            assert conds["Failed"]["reason"] == "BackoffLimitExceeded"
            reasons = {r for _, r, _ in events_for(emu, "greetings-grpo")}
            await wait_for(lambda: {"WaitingForDependency", "JobCreated", "ImagePullBackOff",
                                    "BackoffLimitExceeded"} <= {
                r for _, r, _ in events_for(emu, "greetings-grpo")},
                f"an Event per transition (so far {reasons})", op=op)

            # A spec change after completion restarts nothing; it is recorded.
            jobs_before = _jobs(emu)
            emu.patch("judgetrainings", NS, "greetings-judge", {"spec": {"rounds": 9}})

            def ignored() -> Any:
                conds = status(emu, "judgetrainings", "greetings-judge").get("conditions", [])
                return [c for c in conds if c["type"] == "SpecChangeIgnored"]
            cond = (await wait_for(ignored, "SpecChangeIgnored condition", op=op))[0]
            assert cond["observedGeneration"] == 2 and "create a new resource" in cond["message"]
            assert status(emu, "judgetrainings", "greetings-judge")["phase"] == "Succeeded"
            assert _jobs(emu) == jobs_before

            # Deleting a resource deletes its children.
            emu.delete("grporuns", NS, "greetings-grpo")
            await wait_for(lambda: emu.get("grporuns", NS, "greetings-grpo") is None,
                           "GRPORun gone (finalizer released)", op=op)
            assert "greetings-grpo-grpo" not in _jobs(emu)
            assert emu.get("configmaps", NS, "greetings-grpo-grpo-config") is None
            assert emu.get("services", NS, "greetings-grpo-grpo") is None
            assert not [p for p in emu.objects("pods", NS)
                        if p["metadata"]["labels"].get("zhufu.dev/job") == "greetings-grpo-grpo"]
        finally:
            await op.stop()


async def test_invalid_specs_and_failed_or_missing_dependencies(tmp_path: Path) -> None:
    async with emulator() as (emu, url):
        op = Operator(tmp_path, url, {})
        op.start()
        try:
            # Passes the CRD schema, fails the stage config's cross-field rule.
            emu.create("grporuns", _cr("GRPORun", "bad-batch", {"batchSize": 6,
                                                                 "numGenerations": 4}))
            # A dependency that never appears (the test operator's timeout is 4 s).
            emu.create("grporuns", _cr("GRPORun", "orphan", {"judgeRef": "nobody"}))
            # A dependency that fails.
            emu.create("judgetrainings", _cr("JudgeTraining", "jt-x", {"rounds": 1}))
            emu.create("grporuns", _cr("GRPORun", "after-x", {"judgeRef": "jt-x"}))
            await wait_for(phase_is(emu, "grporuns", "bad-batch", "Failed", "InvalidSpec"),
                           "InvalidSpec", op=op)
            st = status(emu, "grporuns", "bad-batch")
            assert "batchSize must be a multiple of numGenerations" in st["message"]
            await wait_for(lambda: [m for t, r, m in events_for(emu, "bad-batch")
                                    if t == "Warning" and r == "InvalidSpec" and "spec" in m],
                           "Warning Event naming the field", op=op)
            await wait_for(lambda: emu.get("jobs", NS, "jt-x-judge"), "jt-x Job", op=op)
            start_pods(emu, "jt-x-judge")
            job_condition(emu, "jt-x-judge", "Failed", "DeadlineExceeded", "deadline")
            await wait_for(phase_is(emu, "grporuns", "after-x", "Failed", "DependencyFailed"),
                           "DependencyFailed", op=op)
            assert "spec.judgeRef" in status(emu, "grporuns", "after-x")["message"]
            assert "DeadlineExceeded" in status(emu, "grporuns", "after-x")["message"]
            await wait_for(phase_is(emu, "grporuns", "orphan", "Failed", "DependencyNotFound"),
                           "DependencyNotFound after the timeout", timeout=30, op=op)
            assert status(emu, "grporuns", "orphan")["message"].startswith("spec.judgeRef:")
            assert _jobs(emu) == ["jt-x-judge"]
        finally:
            await op.stop()


async def test_restart_mid_reconcile_creates_no_duplicate_job(tmp_path: Path) -> None:
    async with emulator() as (emu, url):
        op = Operator(tmp_path, url, {})
        # Refuse (409, no effect) Kopf's "handler done" patch of the resource until the
        # operator is dead: it dies after creating the Job but before recording that it did.
        # A handler that succeeds at its first try is recorded by the diff-base annotation
        # alone; one that was retried by its progress annotation.
        dead = False
        emu.fail_next(lambda r: not dead and str(r.method.value).upper() == "PATCH"
                      and r.name == "r1" and r.subresource is None
                      and (("progress" in r.text and "curationjob_create" in r.text)
                           or "last-handled-configuration" in r.text), 409, times=10**6)
        op.start()
        try:
            emu.create("curationjobs", _cr("CurationJob", "r1", {"samplesPerQuery": 2}))
            await wait_for(lambda: emu.get("jobs", NS, "r1-curate"), "first Job", op=op)
            uid = emu.get("jobs", NS, "r1-curate")["metadata"]["uid"]
            await op.stop(kill=True)
            dead = True
            annotations = emu.get("curationjobs", NS, "r1")["metadata"].get("annotations", {})
            assert not any("last-handled" in k for k in annotations), annotations
            op.start()
            await wait_for(lambda: any("last-handled" in k for k in emu.get(
                "curationjobs", NS, "r1")["metadata"].get("annotations", {})),
                "the restarted operator finishes the create handler", op=op)
            assert _jobs(emu) == ["r1-curate"]
            assert emu.get("jobs", NS, "r1-curate")["metadata"]["uid"] == uid
            posts = [p for m, p in emu.log if m == "POST" and p.endswith("/jobs")]
            assert len(posts) == 2  # the second answered 409 AlreadyExists
            start_pods(emu, "r1-curate")
            finish(emu, "r1-curate", StageResult("curate", mlflow_run_id="m1").to_json())
            await wait_for(phase_is(emu, "curationjobs", "r1", "Succeeded"), "Succeeded", op=op)
        finally:
            await op.stop()


def test_emulator_is_faithful_enough() -> None:
    """The fidelity fixes the operator relies on, checked directly."""
    import asyncio

    async def run() -> None:
        async with emulator() as (emu, _):
            a = emu.create("curationjobs", _cr("CurationJob", "a", {"seed": 1}))
            meta = a["metadata"]
            assert meta["uid"] and meta["generation"] == 1 and meta["creationTimestamp"]
            rv = int(meta["resourceVersion"])
            b = emu.patch("curationjobs", NS, "a", {"spec": {"seed": 2}, "status": {"phase": "X"}})
            assert b["metadata"]["generation"] == 2 and int(b["metadata"]["resourceVersion"]) > rv
            assert "status" not in b  # the main resource does not write status
            c = emu.patch("curationjobs", NS, "a", {"status": {"phase": "Running"}}, status=True)
            assert c["status"] == {"phase": "Running"} and c["metadata"]["generation"] == 2
            bad = copy.deepcopy(_cr("CurationJob", "b", {"samplesPerQuery": 0}))
            try:
                emu.create("curationjobs", bad)
            except Exception as e:  # noqa: BLE001
                assert getattr(e, "status", None) == 422
            else:
                raise AssertionError("schema violation accepted")
    asyncio.run(run())


async def test_api_errors_are_retried_to_one_job(tmp_path: Path) -> None:
    """The API server answers 500 to the Job creation and 409 to the ConfigMap (as if a
    previous attempt had made it, though it is gone when looked at): the operator retries and
    converges on exactly one Job and its ConfigMap. (A ConfigMap of that name that the
    resource does not own fails it: tests/reliability/test_tenancy_ownership.py.)"""
    async with emulator() as (emu, url):
        emu.fail_next(lambda r: str(r.method.value).upper() == "POST"
                      and r.url.path.endswith("/jobs"), status=500, times=2)
        emu.fail_next(lambda r: str(r.method.value).upper() == "POST"
                      and r.url.path.endswith("/configmaps"), status=409, times=1)
        op = Operator(tmp_path, url, {})
        op.start()
        try:
            emu.create("curationjobs", _cr("CurationJob", "flaky", {}))
            await wait_for(lambda: emu.get("jobs", NS, "flaky-curate"), "Job after retries",
                           op=op)
            await wait_for(phase_is(emu, "curationjobs", "flaky", "Pending", "JobCreated"),
                           "status after retries", op=op)
            posts = [p for m, p in emu.log if m == "POST" and p.endswith("/jobs")]
            assert len(posts) == 3 and _jobs(emu) == ["flaky-curate"]
            assert emu.get("configmaps", NS, "flaky-curate-config")
        finally:
            await op.stop()
