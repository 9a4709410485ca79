"""Play the Job controller of kube-controller-manager against the emulator.

:meth:`JobController.sync` looks at every Job and its pods and does what the real controller
does, in the parts Zhufu relies on:

- creates the pods a Job wants (``parallelism``, ``completions``): NonIndexed pods are named
  ``JOB-xxxxx``; Indexed pods ``JOB-INDEX-xxxxx`` with the completion index as annotation and
  label ``batch.kubernetes.io/job-completion-index``, ``hostname: JOB-INDEX`` and env
  ``JOB_COMPLETION_INDEX``; each with the Job's template, an owner reference and the
  ``batch.kubernetes.io/job-tracking`` finalizer;
- a refused pod (the API server's admission: missing ServiceAccount, exceeded quota) is
  retried after ``create_retry_s`` and reported as a ``FailedCreate`` Warning Event on the Job
  (``Error creating: …``; repeats raise the Event's ``count``);
- counts each pod that ended into ``status.succeeded``/``failed`` (and ``completedIndexes``)
  before removing its finalizer, so deleted pods still count;
- replaces a failed pod (after the previous one has fully terminated) until ``failed``
  exceeds ``backoffLimit``; the delay doubles from ``retry_s`` (capped at 30 s; the real
  controller starts at 10 s and caps at 6 min); with ``backoffLimitPerIndex`` an Indexed
  Job's index is replaced until its own failures exceed that limit, then it is a failed
  index (``status.failedIndexes``) and the other indexes run on;
- applies the Job's ``podFailurePolicy`` to each failed pod, first matching rule wins:
  ``onExitCodes`` (``In``/``NotIn``, optionally one ``containerName``; exit code 0 never
  matches ``NotIn``) and ``onPodConditions``; ``FailJob`` fails the Job at once with reason
  ``PodFailurePolicy`` and the real controller's message (``Container trainer for pod
  NS/NAME failed with exit code 137 matching FailJob rule at index 1``), ``Ignore`` neither
  counts the pod nor delays its replacement, ``Count`` (and no match) counts it;
- ends the Job ``Complete`` (with ``SuccessCriteriaMet`` first) when every index or
  completion succeeded, ``Failed`` (``FailureTarget`` first) with reason
  ``BackoffLimitExceeded``, ``FailedIndexes`` (every index ended, some failed) or
  ``DeadlineExceeded`` (``activeDeadlineSeconds``), deleting
  the pods still running; honours ``suspend``;
- posts ``SuccessfulCreate``, ``Completed``, ``BackoffLimitExceeded`` and
  ``DeadlineExceeded`` Events like the real one.

Not emulated: ``successPolicy``, ``maxFailedIndexes``, pod-level ``restartPolicy: OnFailure``.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
import uuid
from typing import Any

from kube_emulator import ApiError, KubeEmulator

TRACKING = "batch.kubernetes.io/job-tracking"
INDEX = "batch.kubernetes.io/job-completion-index"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
TERMINAL = ("Succeeded", "Failed")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds_since(stamp: str) -> float:
    then = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (dt.datetime.now(dt.UTC) - then).total_seconds()


def index_ranges(indexes: set[int]) -> str:
    """``{0, 1, 2, 5}`` → ``"0-2,5"`` (the format of ``status.completedIndexes``)."""
    out: list[str] = []
    for i in sorted(indexes):
        if out and "-" in out[-1] and int(out[-1].split("-")[1]) == i - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        elif out and "-" not in out[-1] and int(out[-1]) == i - 1:
            out[-1] = f"{out[-1]}-{i}"
        else:
            out.append(str(i))
    return ",".join(out)


def parse_ranges(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if "-" in part:
            a, b = part.split("-")
            out.update(range(int(a), int(b) + 1))
        elif part:
            out.add(int(part))
    return out


def post_event(emu: KubeEmulator, obj: dict[str, Any], etype: str, reason: str, message: str,
               component: str) -> None:
    """An Event about ``obj``; a repeat of the same one raises its ``count``."""
    meta = obj["metadata"]
    for ev in emu.objects("events", meta["namespace"]):
        inv = ev.get("involvedObject") or {}
        if (inv.get("uid"), ev.get("reason"), ev.get("message")) == (
                meta.get("uid"), reason, message):
            emu.patch("events", meta["namespace"], ev["metadata"]["name"],
                      {"count": int(ev.get("count", 1)) + 1, "lastTimestamp": now()})
            return
    emu.create("events", {
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                     "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                           "name": meta["name"], "namespace": meta["namespace"],
                           "uid": meta.get("uid")},
        "type": etype, "reason": reason, "message": message, "count": 1,
        "firstTimestamp": now(), "lastTimestamp": now(),
        "source": {"component": component}, "reportingComponent": component})


class JobController:
    """The Job controller; call :meth:`sync` whenever the store changes (it is idempotent)."""

    def __init__(self, emu: KubeEmulator, retry_s: float = 1.0, create_retry_s: float = 5.0
                 ) -> None:
        self.emu = emu
        self.retry_s = retry_s
        self.create_retry_s = create_retry_s
        self._not_before: dict[str, float] = {}  # job uid -> next pod creation allowed
        self._index_failures: dict[tuple[str, int], int] = {}  # (job uid, index) -> failed

    def sync(self) -> None:
        for job in self.emu.objects("jobs"):
            self._sync_job(job)
        self._release_orphans()

    # ------------------------------------------------------------------ one Job
    def _pods(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        uid = job["metadata"]["uid"]
        return [p for p in self.emu.objects("pods", job["metadata"]["namespace"])
                if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences", []))]

    def _sync_job(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job["spec"]
        status = dict(job.get("status") or {})
        pods = self._pods(job)
        status, fail_job = self._account(job, pods, status)
        pods = self._pods(job)
        if meta.get("deletionTimestamp") or _condition(status, "Complete") or _condition(
                status, "Failed"):
            return
        if fail_job:
            live = [p for p in pods if (p.get("status") or {}).get("phase") not in TERMINAL]
            self._finish(job, status, live, False, "PodFailurePolicy", fail_job)
            return
        indexed = spec.get("completionMode") == "Indexed"
        completions = int(spec.get("completions") or 1)
        live = [p for p in pods if (p.get("status") or {}).get("phase") not in TERMINAL]
        active = [p for p in live if not p["metadata"].get("deletionTimestamp")]
        if spec.get("suspend"):
            for p in active:
                self.emu.delete("pods", meta["namespace"], p["metadata"]["name"])
            if not _condition(status, "Suspended"):
                self._write(job, {**status, "active": 0, "conditions": _set_condition(
                    status, "Suspended", "JobSuspended", "Job suspended")})
            return
        if not status.get("startTime"):
            status["startTime"] = now()
        done = (parse_ranges(status.get("completedIndexes")) if indexed else set())
        lost = parse_ranges(status.get("failedIndexes")) if indexed else set()
        succeeded = int(status.get("succeeded", 0))
        deadline = spec.get("activeDeadlineSeconds")
        if lost and len(done | lost) >= completions and not live:
            self._finish(job, status, live, False, "FailedIndexes",
                         "Job has failed indexes")
        elif int(status.get("failed", 0)) > int(spec.get("backoffLimit", 6)):
            self._finish(job, status, live, False, "BackoffLimitExceeded",
                         "Job has reached the specified backoff limit")
        elif deadline and _seconds_since(status["startTime"]) > float(deadline):
            self._finish(job, status, live, False, "DeadlineExceeded",
                         "Job was active longer than specified deadline")
        elif (len(done) >= completions) if indexed else succeeded >= completions:
            self._finish(job, status, live, True, "CompletionsReached",
                         "Reached expected number of succeeded pods")
        else:
            self._create(job, status, live, done | lost, succeeded, completions, indexed)
            pods = self._pods(job)
            running = [p for p in pods if (p.get("status") or {}).get("phase") not in TERMINAL
                       and not p["metadata"].get("deletionTimestamp")]
            ready = sum(1 for p in running if (p.get("status") or {}).get("phase") == "Running")
            self._write(job, {**status, "active": len(running), "ready": ready})

    def _account(self, job: dict[str, Any], pods: list[dict[str, Any]],
                 status: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Count pods that ended (still holding our finalizer), then release them; also the
        message of the first ``FailJob`` rule a failed pod matched (None: none did)."""
        ended = [p for p in pods if (p.get("status") or {}).get("phase") in TERMINAL
                 and TRACKING in (p["metadata"].get("finalizers") or [])]
        if not ended:
            return status, None
        status = dict(status)
        done = parse_ranges(status.get("completedIndexes"))
        lost = parse_ranges(status.get("failedIndexes"))
        per_index = job["spec"].get("backoffLimitPerIndex")
        fail_job: str | None = None
        for p in ended:
            index = (p["metadata"].get("annotations") or {}).get(INDEX)
            if p["status"]["phase"] == "Succeeded":
                status["succeeded"] = int(status.get("succeeded", 0)) + 1
                if index is not None:
                    done.add(int(index))
            else:
                action, message = failure_rule(job, p)
                if action == "Ignore":
                    continue
                if action == "FailJob" and fail_job is None:
                    fail_job = message
                status["failed"] = int(status.get("failed", 0)) + 1
                if per_index is not None and index is not None:
                    key = (job["metadata"]["uid"], int(index))
                    self._index_failures[key] = self._index_failures.get(key, 0) + 1
                    if self._index_failures[key] > int(per_index):
                        lost.add(int(index))
                failures = int(status["failed"])
                delay = min(30.0, self.retry_s * 2 ** (failures - 1))
                self._not_before[job["metadata"]["uid"]] = time.monotonic() + delay
        if done:
            status["completedIndexes"] = index_ranges(done)
        if lost:
            status["failedIndexes"] = index_ranges(lost)
        self._write(job, status)
        for p in ended:
            self._release(p)
        return status, fail_job

    def _release(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        finalizers = [f for f in meta.get("finalizers") or [] if f != TRACKING]
        try:
            self.emu.patch("pods", meta["namespace"], meta["name"],
                           {"metadata": {"finalizers": finalizers or None}})
        except ApiError:
            pass

    def _release_orphans(self) -> None:
        """Pods whose Job is gone: drop our finalizer once they ended (or never started)."""
        jobs = {j["metadata"]["uid"] for j in self.emu.objects("jobs")}
        for p in self.emu.objects("pods"):
            meta = p["metadata"]
            owners = [r.get("uid") for r in meta.get("ownerReferences", [])
                      if r.get("kind") == "Job"]
            if (TRACKING in (meta.get("finalizers") or []) and owners
                    and not set(owners) & jobs
                    and (p.get("status") or {}).get("phase") in TERMINAL):
                self._release(p)

    def _create(self, job: dict[str, Any], status: dict[str, Any], live: list[dict[str, Any]],
                done: set[int], succeeded: int, completions: int, indexed: bool) -> None:
        uid = job["metadata"]["uid"]
        if time.monotonic() < self._not_before.get(uid, 0):
            return
        if indexed:
            busy = {int(p["metadata"]["annotations"].get(INDEX, -1)) for p in live}
            wanted: list[int | None] = [i for i in range(completions)
                                        if i not in done and i not in busy]
        else:
            parallelism = int(job["spec"].get("parallelism") or 1)
            n = min(parallelism, completions - succeeded) - len(live)
            wanted = [None] * max(0, n)
        for index in wanted:
            pod = self._pod(job, index)
            try:
                created = self.emu.create("pods", pod)
            except ApiError as e:
                if e.status in (403, 422):
                    post_event(self.emu, job, "Warning", "FailedCreate",
                               f"Error creating: {e.message}", "job-controller")
                    self._not_before[uid] = time.monotonic() + self.create_retry_s
                    return
                raise
            post_event(self.emu, job, "Normal", "SuccessfulCreate",
                       f"Created pod: {created['metadata']['name']}", "job-controller")

    def _pod(self, job: dict[str, Any], index: int | None) -> dict[str, Any]:
        meta, template = job["metadata"], copy.deepcopy(job["spec"]["template"])
        tmeta = template.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        annotations = dict(tmeta.get("annotations") or {})
        spec = template["spec"]
        name = f"{meta['name']}-"
        if index is not None:
            labels[INDEX] = annotations[INDEX] = str(index)
            spec["hostname"] = f"{meta['name']}-{index}"
            name = f"{meta['name']}-{index}-"
            for c in spec.get("containers", []):
                if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in c.get("env", [])):
                    c.setdefault("env", []).append({"name": "JOB_COMPLETION_INDEX", "valueFrom": {
                        "fieldRef": {"fieldPath": f"metadata.annotations['{INDEX}']"}}})
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "generateName": name, "namespace": meta["namespace"], "labels": labels,
            "annotations": annotations, "finalizers": [TRACKING],
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True,
                                 "blockOwnerDeletion": True}]}, "spec": spec}

    def _finish(self, job: dict[str, Any], status: dict[str, Any], live: list[dict[str, Any]],
                ok: bool, reason: str, message: str) -> None:
        for p in live:
            if not p["metadata"].get("deletionTimestamp"):
                try:
                    self.emu.delete("pods", p["metadata"]["namespace"], p["metadata"]["name"])
                except ApiError:
                    pass
        interim, final = ("SuccessCriteriaMet", "Complete") if ok else ("FailureTarget", "Failed")
        conditions = _set_condition(status, interim, reason, message)
        conditions = _set_condition({"conditions": conditions}, final, reason, message)
        body = {**status, "active": 0, "ready": 0, "conditions": conditions}
        if ok:
            body["completionTime"] = now()
        self._write(job, body)
        if ok:
            post_event(self.emu, job, "Normal", "Completed", "Job completed", "job-controller")
        else:
            post_event(self.emu, job, "Warning", reason, message, "job-controller")

    def _write(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        if status == (job.get("status") or {}):
            return
        meta = job["metadata"]
        try:
            out = self.emu.patch("jobs", meta["namespace"], meta["name"], {"status": status},
                                 status=True)
            job["status"] = out.get("status")
        except ApiError:
            pass  # the Job was deleted meanwhile


def failure_rule(job: dict[str, Any], pod: dict[str, Any]) -> tuple[str, str]:
    """(action, message) of the first ``podFailurePolicy`` rule a failed pod matches, as the
    real controller words it; ``("Count", "")`` when none does."""
    rules = (job["spec"].get("podFailurePolicy") or {}).get("rules") or []
    name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
    st = pod.get("status") or {}
    for i, rule in enumerate(rules):
        action = rule["action"]
        codes = rule.get("onExitCodes")
        if codes:
            for cs in st.get("containerStatuses") or []:
                term = (cs.get("state") or {}).get("terminated")
                if not term or codes.get("containerName") not in (None, cs.get("name")):
                    continue
                code = int(term.get("exitCode", 0))
                inside = code in codes["values"]
                if (inside if codes["operator"] == "In" else not inside and code != 0):
                    return action, (f"Container {cs.get('name')} for pod {name} failed with "
                                    f"exit code {code} matching {action} rule at index {i}")
        for want in rule.get("onPodConditions") or []:
            for cond in st.get("conditions") or []:
                if cond.get("type") == want["type"] and cond.get("status") == want.get(
                        "status", "True"):
                    return action, (f"Pod {name} has condition {want['type']} matching "
                                    f"{action} rule at index {i}")
    return "Count", ""


def _condition(status: dict[str, Any], ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True"
               for c in status.get("conditions") or [])


def _set_condition(status: dict[str, Any], ctype: str, reason: str, message: str
                   ) -> list[dict[str, Any]]:
    conditions = [dict(c) for c in status.get("conditions") or [] if c.get("type") != ctype]
    stamp = now()
    conditions.append({"type": ctype, "status": "True", "reason": reason, "message": message,
                       "lastProbeTime": stamp, "lastTransitionTime": stamp})
    return conditions
