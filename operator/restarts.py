"""Whole-group restarts of a distributed resource's Job (GRPORun: the kind whose stages run
under torchrun).

A group of torch ranks cannot lose one member and go on: a pod the Job controller replaced
alone cannot rejoin the survivors' rendezvous, and the survivors wait in their collectives
until a timeout. So the Job of a distributed kind fails as soon as one pod's trainer exits
non-zero, or, with ``nodes > 1``, a pod is disrupted (the ``podFailurePolicy`` of
:func:`~zhufu.operator.builders.pod_failure_policy`; the Job's ``Failed`` reason is then
``PodFailurePolicy``), and the operator restarts the whole group:

1. it counts the restart: ``status.restarts`` is the failed Job's ``zhufu.dev/restart``
   annotation + 1 (recomputed from the Job, so a repeated pass never counts twice), sets the
   ``Restarted`` condition and posts a Warning Event ``Restarting`` naming the failure;
2. it deletes the Job with ``Foreground`` propagation: the Job stays (with a
   ``deletionTimestamp``) until the garbage collector deleted its pods, so no pod of the old
   group still holds pod 0's hostname or the rendezvous port when the new group starts;
3. once the Job is gone it creates it again the way it created the first (same names, the
   same ConfigMap), annotated with its restart number. The new pods resume from the last
   complete checkpoint (``LATEST`` in the ``s3://`` checkpoint dir) and skip the steps an
   earlier Job finished (``ZHUFU_JOB_UID`` is the resource's uid, the same for every Job).

After ``spec.maxRestarts`` restarts the next group failure leaves the resource ``Failed``
(``RestartLimitExceeded``) with a message naming that failure. A Job that failed for another
reason (``BackoffLimitExceeded``, ``DeadlineExceeded``) is not restarted, nor one whose
resource's spec changed since the Job was built (a restart would run the new spec, which the
operator never applies to a started stage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zhufu.operator.builders import GENERATION_ANNOTATION, restarts_before
from zhufu.operator.spec import GroupRestarts, Kind
from zhufu.operator.status import JobState, set_condition

#: The Job controller's ``Failed`` reason when a ``FailJob`` rule of its podFailurePolicy matched.
GROUP_FAILURE = "PodFailurePolicy"
DEFAULT_MAX_RESTARTS: int = GroupRestarts.model_fields["maxRestarts"].default


@dataclass(frozen=True)
class Decision:
    """What to do about a Job a pod failure failed: restart it (``restart``), or not, and the
    status to write (``state``, with ``restarts`` for ``status.restarts``)."""

    restart: bool
    restarts: int
    state: JobState


def max_restarts(parent: dict[str, Any]) -> int:
    """``spec.maxRestarts`` (the API server stores no defaults: the model's default)."""
    value = (parent.get("spec") or {}).get("maxRestarts")
    return DEFAULT_MAX_RESTARTS if value is None else int(value)


def decide(kind: Kind, parent: dict[str, Any], job: dict[str, Any], state: JobState
           ) -> Decision | None:
    """The decision for ``job`` in ``state`` (from :func:`~zhufu.operator.status.job_state`),
    or None when it is not a group failure of a distributed kind."""
    if not kind.distributed or state.phase != "Failed" or state.reason != GROUP_FAILURE:
        return None
    done = restarts_before(job)
    limit = max_restarts(parent)
    cause = state.message or "a pod of the group failed"
    if done >= limit:
        return Decision(False, done, JobState(
            "Failed", "RestartLimitExceeded", f"the group failed again after {done} "
            f"restart(s) (spec.maxRestarts: {limit}); last failure: {cause}",
            state.start_time, state.completion_time))
    ann = job["metadata"].get("annotations") or {}
    built = str(ann.get(GENERATION_ANNOTATION, ""))
    current = str((parent.get("metadata") or {}).get("generation") or "")
    if built and current and built != current:
        return Decision(False, done, JobState(
            "Failed", "SpecChanged", f"the group failed and is not restarted: the spec changed "
            f"since its Job was built (generation {built} -> {current}), and a restart would "
            f"run the new spec; create a new resource to run it. Failure: {cause}",
            state.start_time, state.completion_time))
    return Decision(True, done + 1, JobState(
        "Pending", "Restarting", f"restart {done + 1} of {limit}: {cause}; the Job is deleted "
        "with its pods and created again, resuming from the last checkpoint", state.start_time))


def restart_status(patch: dict[str, Any], decision: Decision,
                   generation: int | None = None) -> dict[str, Any]:
    """``patch`` (the phase's status fields, from :func:`~zhufu.operator.status.status_patch`)
    with ``restarts`` and, on a restart, the ``Restarted`` condition carrying its message."""
    out = {**patch, "restarts": decision.restarts}
    if decision.restart:
        out["conditions"] = set_condition(patch.get("conditions") or [], "Restarted", True,
                                          "GroupRestarted", patch.get("message", ""),
                                          generation)
    return out
