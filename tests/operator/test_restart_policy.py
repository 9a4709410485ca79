"""The Job's podFailurePolicy and the restart decision, with no cluster at all.

The Jobs are checked with ``kubernetes-validate --strict`` against the Kubernetes 1.37
schemas, as in test_builders.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from zhufu.operator import builders, restarts
from zhufu.operator.settings import OperatorSettings
from zhufu.operator.spec import kind_of
from zhufu.operator.status import JobState
from zhufu.operator.validation import SpecError, validate

SETTINGS = OperatorSettings(mlflow_uri="http://mlflow:5000", trainer_image="reg/trainer:1")
GRPO = {"judgeRef": "models:/zhufu-judge/3"}


def _job(kind: str, spec: dict[str, Any], **kw: Any) -> dict[str, Any]:
    k = kind_of(kind)
    workload, _, config = validate(k, "demo", spec)
    return builders.children(k, "demo", "team-a", workload, config, SETTINGS, **kw)[-1]


def _env(job: dict[str, Any], name: str) -> dict[str, Any]:
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    return next(v for v in env if v["name"] == name)


@pytest.mark.parametrize("nodes", [1, 2])
def test_grpo_job_fails_whole_on_a_trainer_exit(nodes: int) -> None:
    job = _job("GRPORun", {**GRPO, "nodes": nodes}, restarts=2, owner_uid="uid-of-the-run")
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore" if nodes == 1 else "FailJob",
                        "onPodConditions": [{"type": "DisruptionTarget"}]}
    assert rules[1] == {"action": "FailJob", "onExitCodes": {
        "containerName": "trainer", "operator": "NotIn", "values": [0]}}
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"  # FailJob needs it
    assert job["metadata"]["annotations"][builders.RESTART_ANNOTATION] == "2"
    assert _env(job, builders.RUN_UID_ENV) == {"name": builders.RUN_UID_ENV,
                                               "value": "uid-of-the-run"}
    assert builders.run_uid({**job, "metadata": {**job["metadata"], "uid": "job-uid"}}) == (
        "uid-of-the-run")
    assert builders.restarts_before(job) == 2


@pytest.mark.parametrize("kind", ["CurationJob", "JudgeTraining"])
def test_one_process_kinds_keep_pod_retries(kind: str) -> None:
    job = _job(kind, {})
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    assert job["spec"]["podFailurePolicy"] == {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    # Without an owner uid (zhufu operator render) the pods get the Job's own uid.
    assert _env(job, builders.RUN_UID_ENV)["valueFrom"] == {"fieldRef": {
        "fieldPath": f"metadata.labels['{builders.JOB_UID_LABEL}']"}}
    assert builders.run_uid({**job, "metadata": {**job["metadata"], "uid": "job-uid"}}) == (
        "job-uid")
    with pytest.raises(SpecError) as err:
        validate(kind_of(kind), "demo", {"maxRestarts": 2})
    assert err.value.field == "spec.maxRestarts"


def test_max_restarts_bounds() -> None:
    assert validate(kind_of("GRPORun"), "demo", {**GRPO, "maxRestarts": 0})[0][
        "maxRestarts"] == 0
    with pytest.raises(SpecError, match="spec.maxRestarts"):
        validate(kind_of("GRPORun"), "demo", {**GRPO, "maxRestarts": -1})


def _failed_job(restarts_before: int, generation: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": "demo-grpo", "uid": "u", "annotations": {
        builders.RESTART_ANNOTATION: str(restarts_before),
        builders.GENERATION_ANNOTATION: str(generation)}}}


def _parent(generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "demo", "generation": generation}, "spec": spec}


FAILED = JobState("Failed", "PodFailurePolicy", "pod demo-grpo-1 failed with exit code 137")


def test_decide_restart_limit_spec_change_and_other_failures() -> None:
    grpo = kind_of("GRPORun")
    first = restarts.decide(grpo, _parent(), _failed_job(0), FAILED)
    assert first is not None and first.restart and first.restarts == 1
    assert first.state.phase == "Pending" and first.state.reason == "Restarting"
    assert first.state.message.startswith("restart 1 of 3: pod demo-grpo-1 failed")
    # Recomputed from the same Job: the same restart, never counted twice.
    assert restarts.decide(grpo, _parent(), _failed_job(0), FAILED) == first
    last = restarts.decide(grpo, _parent(maxRestarts=1), _failed_job(1), FAILED)
    assert last is not None and not last.restart and last.restarts == 1
    assert (last.state.phase, last.state.reason) == ("Failed", "RestartLimitExceeded")
    assert "last failure: pod demo-grpo-1 failed with exit code 137" in last.state.message
    none = restarts.decide(grpo, _parent(maxRestarts=0), _failed_job(0), FAILED)
    assert none is not None and none.state.reason == "RestartLimitExceeded"
    changed = restarts.decide(grpo, _parent(generation=2), _failed_job(0), FAILED)
    assert changed is not None and changed.state.reason == "SpecChanged"
    assert "generation 1 -> 2" in changed.state.message
    backoff = JobState("Failed", "BackoffLimitExceeded", "")
    assert restarts.decide(grpo, _parent(), _failed_job(0), backoff) is None
    assert restarts.decide(kind_of("JudgeTraining"), _parent(), _failed_job(0), FAILED) is None
    running = JobState("Running", "PodRunning")
    assert restarts.decide(grpo, _parent(), _failed_job(0), running) is None


def test_restart_status_adds_the_count_and_condition() -> None:
    grpo = kind_of("GRPORun")
    decision = restarts.decide(grpo, _parent(), _failed_job(0), FAILED)
    assert decision is not None
    out = restarts.restart_status({"message": decision.state.message, "conditions": []},
                                  decision, 1)
    assert out["restarts"] == 1
    assert out["conditions"][0]["type"] == "Restarted"
    assert out["conditions"][0]["message"] == decision.state.message
