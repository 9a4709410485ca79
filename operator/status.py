"""Status from a Job and its pods: phase, an actionable reason, conditions and the result.

Pure functions over dicts as the API returns them; the handlers fetch and patch. Reasons are
the ones a user can act on: ``ImagePullBackOff`` (check ``spec.image``), ``Unschedulable``
(no node fits ``spec.resources``/``nodeSelector``), ``OOMKilled`` (raise
``spec.resources.memory``), ``Evicted``, ``BackoffLimitExceeded``, ``DeadlineExceeded``,
``FailedCreate`` (the Job controller's Events: no pod can be created, e.g. a missing
ServiceAccount or an exceeded ResourceQuota).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from zhufu.pipeline.redact import strip_url_credentials
from zhufu.pipeline.results import StageResult

#: Every condition type the operator writes (phase_conditions, SpecChangeIgnored and the
#: group restarts' Restarted).
CONDITION_TYPES = ("Created", "Running", "Succeeded", "Failed", "SpecChangeIgnored",
                   "Restarted")
_PULL = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
_CONFIG = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
HINTS = {
    "ImagePullBackOff": "the image cannot be pulled: check spec.image and pull secrets",
    "Unschedulable": "no node fits: check spec.resources, nodeSelector, tolerations, queue",
    "OOMKilled": "the container ran out of memory: raise spec.resources.memory",
    "Evicted": "the node evicted the pod (resource pressure); the Job retries it",
    "BackoffLimitExceeded": "every retry failed (spec.backoffLimit); see the message",
    "DeadlineExceeded": "the Job ran past spec.activeDeadlineSeconds",
    "RestartLimitExceeded": "every whole-group restart failed (spec.maxRestarts)",
    "CreateContainerConfigError": "a referenced Secret or ConfigMap key is missing",
    "FailedCreate": "the Job controller cannot create the pod: check that the ServiceAccount "
                    "exists (the chart's jobs.serviceAccount) and the namespace's "
                    "ResourceQuota; the Job keeps retrying",
}


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class JobState:
    """What the Job and its pods say: phase, reason, message, times and the stage result."""

    phase: str
    reason: str
    message: str = ""
    start_time: str | None = None
    completion_time: str | None = None
    result: StageResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _job_condition(job: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype and c.get("status") == "True":
            return c
    return None


def _statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    st = pod.get("status") or {}
    return list(st.get("containerStatuses") or []) + list(st.get("initContainerStatuses") or [])


def _index(pod: dict[str, Any]) -> int:
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    try:
        return int(ann.get("batch.kubernetes.io/job-completion-index", 0))
    except ValueError:
        return 0


def parse_result(text: str | None) -> StageResult | None:
    """A StageResult from a termination message, or None if it is not one."""
    if not text:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or "stage" not in data:
            return None
        result = StageResult(**data)
    except (ValueError, TypeError):
        return None
    for attr in ("outputs", "registered", "metrics"):
        if not isinstance(getattr(result, attr), dict):
            return None
    return result


def pod_result(pods: list[dict[str, Any]]) -> StageResult | None:
    """The result written by a succeeded pod (pod 0 of an Indexed Job first)."""
    for pod in sorted(pods, key=_index):
        for cs in _statuses(pod):
            term = (cs.get("state") or {}).get("terminated") or {}
            if term.get("exitCode") == 0:
                result = parse_result(term.get("message"))
                if result is not None:
                    return result
    return None


def _pod_problem(pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The most actionable problem among the pods, as (reason, message)."""
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "?")
        st = pod.get("status") or {}
        if st.get("reason") == "Evicted":
            return "Evicted", f"pod {name}: {st.get('message', 'evicted')}"
        for cs in _statuses(pod):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason", "")
            if reason in _PULL:
                return "ImagePullBackOff", f"pod {name}: {reason}: {waiting.get('message', '')}"
            if reason in _CONFIG:
                return "CreateContainerConfigError", (
                    f"pod {name}: {reason}: {waiting.get('message', '')}")
        for cs in _statuses(pod):
            for key in ("state", "lastState"):
                term = (cs.get(key) or {}).get("terminated") or {}
                if term.get("reason") == "OOMKilled":
                    return "OOMKilled", f"pod {name}: container {cs.get('name')} OOMKilled"
        for cond in st.get("conditions") or []:
            if (cond.get("type") == "PodScheduled" and cond.get("status") == "False"
                    and cond.get("reason") == "Unschedulable"):
                return "Unschedulable", f"pod {name}: {cond.get('message', 'unschedulable')}"
    return None


def _failure_tail(pods: list[dict[str, Any]], limit: int = 400) -> str:
    """The end of a failed container's termination message (its log tail on error)."""
    for pod in pods:
        for cs in _statuses(pod):
            term = (cs.get("state") or {}).get("terminated") or {}
            if term and term.get("exitCode", 0) != 0 and term.get("message"):
                text = str(term["message"]).strip()
                return text[-limit:]
    return ""


def failed_create(events: list[dict[str, Any]]) -> str | None:
    """The message of the newest ``FailedCreate`` Warning among a Job's Events, if any."""
    def when(e: dict[str, Any]) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime")
                   or (e.get("metadata") or {}).get("creationTimestamp") or "")

    found = [e for e in events if e.get("reason") == "FailedCreate"
             and e.get("type", "Warning") == "Warning"]
    return str(max(found, key=when).get("message") or "FailedCreate") if found else None


def job_state(job: dict[str, Any] | None, pods: list[dict[str, Any]],
              events: list[dict[str, Any]] = ()) -> JobState:
    """Phase and reason of a stage from its Job, its pods and its Events."""
    if job is None:
        return JobState("Pending", "JobMissing", "the Job does not exist (yet)")
    st = job.get("status") or {}
    start, end = st.get("startTime"), st.get("completionTime")
    if _job_condition(job, "Complete") or _job_condition(job, "SuccessCriteriaMet"):
        result = pod_result(pods)
        msg = "the stage finished" + ("" if result else "; no result in the termination message")
        return JobState("Succeeded", "Completed", msg, start, end or now(), result)
    failed = _job_condition(job, "Failed") or _job_condition(job, "FailureTarget")
    if failed:
        reason = failed.get("reason") or "Failed"
        problem = _pod_problem(pods)
        parts = [failed.get("message") or HINTS.get(reason, "")]
        if problem:
            parts.append(f"{problem[0]}: {problem[1]} ({HINTS.get(problem[0], '')})")
        tail = _failure_tail(pods)
        if tail:
            parts.append(f"last output: {tail}")
        return JobState("Failed", reason, "; ".join(p for p in parts if p), start,
                        failed.get("lastTransitionTime") or now())
    if _job_condition(job, "Suspended"):
        return JobState("Pending", "Suspended", "the Job is suspended (spec.suspend or waiting "
                        "for Kueue admission)", start)
    problem = _pod_problem(pods)
    if problem:
        running = any((p.get("status") or {}).get("phase") == "Running" for p in pods)
        return JobState("Running" if running else "Pending", problem[0],
                        f"{problem[1]}; {HINTS.get(problem[0], '')}", start)
    if any((p.get("status") or {}).get("phase") == "Running" for p in pods):
        return JobState("Running", "PodRunning", "the stage is running", start)
    if pods:
        return JobState("Pending", "PodPending", "waiting for the pod to start", start)
    refused = failed_create(list(events))
    if refused:
        return JobState("Pending", "FailedCreate",
                        f"Job {job['metadata'].get('name', '?')}: {refused}; "
                        f"{HINTS['FailedCreate']}", start)
    return JobState("Pending", "JobCreated", "the Job exists; no pod yet", start)


def set_condition(conditions: list[dict[str, Any]], ctype: str, status: bool, reason: str,
                  message: str, generation: int | None = None) -> list[dict[str, Any]]:
    """A new conditions list with ``ctype`` set; lastTransitionTime moves only on a flip."""
    if ctype not in CONDITION_TYPES:
        raise ValueError(f"condition type {ctype!r} is not one of {CONDITION_TYPES}")
    value = "True" if status else "False"
    out = [dict(c) for c in conditions]
    for c in out:
        if c.get("type") == ctype:
            if c.get("status") != value:
                c["lastTransitionTime"] = now()
            c.update(status=value, reason=reason, message=message)
            if generation is not None:
                c["observedGeneration"] = generation
            return out
    new = {"type": ctype, "status": value, "reason": reason, "message": message,
           "lastTransitionTime": now()}
    if generation is not None:
        new["observedGeneration"] = generation
    return [*out, new]


def phase_conditions(conditions: list[dict[str, Any]], phase: str, reason: str, message: str,
                     generation: int | None = None) -> list[dict[str, Any]]:
    """Conditions Created/Running/Succeeded/Failed for a phase (Kubeflow-style)."""
    created = phase not in ("Waiting",) and reason not in ("InvalidSpec", "DependencyFailed",
                                                              "DependencyNotFound")
    out = set_condition(conditions, "Created", created,
                        "JobCreated" if created else reason,
                        "the Job was created" if created else message, generation)
    out = set_condition(out, "Running", phase == "Running",
                        reason if phase in ("Running", "Pending") else phase, message, generation)
    out = set_condition(out, "Succeeded", phase == "Succeeded",
                        reason if phase == "Succeeded" else "NotFinished", message
                        if phase == "Succeeded" else "", generation)
    out = set_condition(out, "Failed", phase == "Failed",
                        reason if phase == "Failed" else "NotFailed",
                        message if phase == "Failed" else "", generation)
    return out


def status_patch(current: dict[str, Any], state: JobState, job_name: str
                 ) -> dict[str, Any]:
    """The status fields to write for ``state`` (merge-patch body for ``status``)."""
    message = strip_url_credentials(state.message)[:1024]
    body: dict[str, Any] = {
        "phase": state.phase, "reason": state.reason, "message": message,
        "jobName": job_name,
        "conditions": phase_conditions(current.get("conditions") or [], state.phase,
                                       state.reason, message),
    }
    if state.start_time:
        body["startTime"] = state.start_time
    if state.completion_time and state.phase in ("Succeeded", "Failed"):
        body["completionTime"] = state.completion_time
    if state.result is not None:
        r = state.result
        if r.mlflow_run_id:
            body["mlflowRunId"] = r.mlflow_run_id
        body["outputs"] = {k: str(v) for k, v in r.outputs.items()}
        body["registered"] = {k: str(v) for k, v in r.registered.items()}
        body["metrics"] = {k: float(v) for k, v in r.metrics.items()
                           if isinstance(v, int | float)}
    return body


def changed(current: dict[str, Any], patch: dict[str, Any]) -> bool:
    """Whether writing ``patch`` changes anything users see (ignores timestamps)."""
    def strip(conds: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted((c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
                      for c in conds)
    for key, value in patch.items():
        if key == "conditions":
            if strip(current.get("conditions") or []) != strip(value):
                return True
        elif current.get(key) != value:
            return True
    return False
