"""Status decisions from Job/pod dicts shaped like the API's, and dependency resolution.

Pure functions, no cluster: the Job and pod bodies below follow what the Job controller and
the kubelet write (conditions, container states, termination messages).
"""

from __future__ import annotations

from typing import Any

import pytest

from zhufu.operator import dependencies
from zhufu.operator.status import changed, job_state, parse_result, phase_conditions, status_patch
from zhufu.pipeline.results import StageResult


def _job(*conds: tuple[str, str]) -> dict[str, Any]:
    return {"status": {"startTime": "2026-01-01T00:00:00Z", "conditions": [
        {"type": t, "status": "True", "reason": r, "message": f"{r} happened",
         "lastTransitionTime": "2026-01-01T01:00:00Z"} for t, r in conds]}}


def _pod(phase: str = "Pending", waiting: str | None = None, terminated: dict | None = None,
         last: dict | None = None, **status: Any) -> dict[str, Any]:
    cs: dict[str, Any] = {"name": "trainer", "state": {}}
    if waiting:
        cs["state"]["waiting"] = {"reason": waiting, "message": "details"}
    if terminated:
        cs["state"]["terminated"] = terminated
    if last:
        cs["lastState"] = {"terminated": last}
    return {"metadata": {"name": "p-0"}, "status": {"phase": phase, "containerStatuses": [cs],
                                                     **status}}


RESULT = StageResult(stage="judge-train", mlflow_run_id="abc123",
                     outputs={"judge": "s3://b/judge.json"},
                     registered={"zhufu-judge": "3"}, metrics={"dev_accuracy": 0.93})


@pytest.mark.parametrize(("job", "pods", "phase", "reason"), [
    (_job(), [], "Pending", "JobCreated"),
    (_job(), [_pod()], "Pending", "PodPending"),
    (_job(), [_pod("Running")], "Running", "PodRunning"),
    (_job(), [_pod(waiting="ImagePullBackOff")], "Pending", "ImagePullBackOff"),
    (_job(), [_pod(waiting="ErrImagePull")], "Pending", "ImagePullBackOff"),
    (_job(), [_pod(waiting="CreateContainerConfigError")], "Pending",
     "CreateContainerConfigError"),
    (_job(), [_pod(conditions=[{"type": "PodScheduled", "status": "False",
                                "reason": "Unschedulable", "message": "0/3 nodes: gpu"}])],
     "Pending", "Unschedulable"),
    (_job(), [_pod("Failed", reason="Evicted", message="memory pressure")], "Pending", "Evicted"),
    (_job(), [_pod("Running", last={"reason": "OOMKilled", "exitCode": 137})], "Running",
     "OOMKilled"),
    (_job(("Suspended", "JobSuspended")), [], "Pending", "Suspended"),
    (_job(("Failed", "BackoffLimitExceeded")),
     [_pod("Failed", terminated={"exitCode": 137, "reason": "OOMKilled"})], "Failed",
     "BackoffLimitExceeded"),
    (_job(("Failed", "DeadlineExceeded")), [], "Failed", "DeadlineExceeded"),
    (_job(("Complete", "CompletionsReached")),
     [_pod("Succeeded", terminated={"exitCode": 0, "message": RESULT.to_json()})],
     "Succeeded", "Completed"),
])
def test_job_state(job: dict, pods: list, phase: str, reason: str) -> None:
    state = job_state(job, pods)
    assert (state.phase, state.reason) == (phase, reason), state.message


def test_failed_job_message_names_the_pod_problem_and_log_tail() -> None:
    pods = [_pod("Failed", terminated={"exitCode": 1, "reason": "Error",
                                       "message": "ConfigError: rounds: too large"}),
            _pod("Failed", last={"reason": "OOMKilled", "exitCode": 137})]
    state = job_state(_job(("Failed", "BackoffLimitExceeded")), pods)
    assert "OOMKilled" in state.message and "spec.resources.memory" in state.message
    assert "ConfigError: rounds: too large" in state.message


def test_result_is_copied_into_status() -> None:
    pods = [_pod("Succeeded", terminated={"exitCode": 0, "message": RESULT.to_json()})]
    state = job_state(_job(("Complete", "CompletionsReached")), pods)
    patch = status_patch({}, state, "demo-judge")
    assert patch["mlflowRunId"] == "abc123"
    assert patch["registered"] == {"zhufu-judge": "3"}
    assert patch["outputs"] == {"judge": "s3://b/judge.json"}
    assert patch["metrics"] == {"dev_accuracy": 0.93}
    conds = {c["type"]: c["status"] for c in patch["conditions"]}
    assert conds == {"Created": "True", "Running": "False", "Succeeded": "True",
                     "Failed": "False"}
    assert not changed({**patch}, status_patch(patch, state, "demo-judge"))


@pytest.mark.parametrize("text", ["", "not json", "[1,2]", '{"no_stage": 1}',
                                  '{"stage": "x", "outputs": [1]}', '{"stage": "x", "bad": 1}'])
def test_unreadable_results_are_none(text: str) -> None:
    assert parse_result(text) is None


def test_condition_transition_time_moves_only_on_flip() -> None:
    a = phase_conditions([], "Running", "PodRunning", "m")
    running = next(c for c in a if c["type"] == "Running")
    running["lastTransitionTime"] = "2000-01-01T00:00:00Z"
    b = phase_conditions(a, "Running", "PodRunning", "m2")
    assert next(c for c in b if c["type"] == "Running")["lastTransitionTime"] == (
        "2000-01-01T00:00:00Z")
    c = phase_conditions(b, "Succeeded", "Completed", "done")
    assert next(x for x in c if x["type"] == "Running")["lastTransitionTime"] != (
        "2000-01-01T00:00:00Z")


def test_condition_types_are_the_declared_ones() -> None:
    """CONDITION_TYPES is what the CRD documents and all set_condition accepts."""
    from zhufu.operator.crds import status_schema
    from zhufu.operator.status import CONDITION_TYPES, set_condition

    written = {c["type"] for c in phase_conditions([], "Running", "PodRunning", "m")}
    assert written | {"SpecChangeIgnored", "Restarted"} == set(CONDITION_TYPES)
    doc = status_schema()["properties"]["conditions"]["items"]["properties"]["type"]
    assert all(t in doc["description"] for t in CONDITION_TYPES)
    with pytest.raises(ValueError, match="WaitingForDependency"):
        set_condition([], "WaitingForDependency", True, "r", "m")


def test_dependencies_wait_fail_and_resolve() -> None:
    deps = {"judgeRef": "j", "curationRef": "models:/zhufu-reward/2"}
    assert dependencies.check(deps, {"judgeRef": None}).state == "waiting"
    assert dependencies.missing(deps, {"judgeRef": None}) == ["spec.judgeRef"]
    running = {"status": {"phase": "Running"}}
    assert dependencies.check(deps, {"judgeRef": running}).state == "waiting"
    failed = dependencies.check(deps, {"judgeRef": {"status": {"phase": "Failed",
                                                               "reason": "OOMKilled"}}})
    assert (failed.state, failed.field) == ("failed", "spec.judgeRef")
    empty = dependencies.check(deps, {"judgeRef": {"status": {"phase": "Succeeded"}}})
    assert empty.state == "failed" and "registered no model" in empty.message
    done = {"status": {"phase": "Succeeded", "registered": {"zhufu-judge": "3"}}}
    ok = dependencies.check(deps, {"judgeRef": done})
    assert ok.state == "ready"
    assert ok.models == {"judge": "models:/zhufu-judge/3", "rm": "models:/zhufu-reward/2"}
    config = dependencies.apply_models({"rewards": [{"name": "judge"}, {"name": "rm"},
                                                    {"name": "format"}]}, ok.models)
    assert [r.get("model") for r in config["rewards"]] == [
        "models:/zhufu-judge/3", "models:/zhufu-reward/2", None]
    # No rewards given: the pipeline's default rewards get the judge.
    default = dependencies.apply_models({}, {"judge": "models:/zhufu-judge/3"})
    assert default["rewards"][0] == {"name": "judge", "weight": 1.0,
                                     "model": "models:/zhufu-judge/3"}


def test_pods_never_created_show_the_newest_failed_create() -> None:
    job = {"metadata": {"name": "r-curate"}, "status": {}}
    old = {"type": "Warning", "reason": "FailedCreate", "message": "Error creating: old",
           "lastTimestamp": "2026-01-01T00:00:01Z"}
    new = {**old, "message": "Error creating: quota", "lastTimestamp": "2026-01-01T00:00:09Z"}
    normal = {"type": "Normal", "reason": "SuccessfulCreate", "message": "Created pod: x"}
    state = job_state(job, [], [new, normal, old])
    assert (state.phase, state.reason) == ("Pending", "FailedCreate")
    assert state.message.startswith("Job r-curate: Error creating: quota; the Job controller")
    assert job_state(job, [], [normal]).reason == "JobCreated"
    pod = {"metadata": {"name": "p"}, "status": {"phase": "Pending"}}
    assert job_state(job, [pod], [new]).reason == "PodPending"  # a pod exists after all
