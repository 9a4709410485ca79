"""A CurationJob over several pods (issue 15 item 4): ``spec.shards: N`` is an Indexed Job of
N pods (``--shard`` = the completion index, each index retried alone), then, once every shard
succeeded, a second Job that reads every part and trains the reward model.

Builders: checked with ``kubernetes-validate --strict`` (Kubernetes 1.37 schemas). The flow:
the real operator (``kopf run`` in a subprocess) over HTTP against the kmock-based emulator;
the tests play the Job controller and the kubelet (no real cluster can run here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
from opharness import NS, Operator, emulator, events_for, finish, phase_is, start_pods, status
from opharness import wait_for as _wait_for

from zhufu.operator import builders
from zhufu.operator.settings import OperatorSettings
from zhufu.operator.spec import kind_of
from zhufu.operator.validation import validate
from zhufu.pipeline.results import StageResult

SETTINGS = OperatorSettings(mlflow_uri="http://mlflow:5000", s3_endpoint="http://minio:9000",
                            s3_secret="zhufu-s3", trainer_image="reg/trainer:1")
SPEC = {"shards": 3, "outputDir": "s3://zhufu/curated", "backoffLimit": 4,
        "queue": "team-a", "suspend": True}
CURATION = kind_of("CurationJob")


def _container(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]["containers"][0]


def _env(job: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in _container(job)["env"]}


def _render(spec: dict[str, Any]) -> list[dict[str, Any]]:
    workload, _, config = validate(CURATION, "cur", spec)
    return builders.children(CURATION, "cur", "team-a", workload, config, SETTINGS)


def _as_stored(job: dict[str, Any], uid: str = "1234") -> dict[str, Any]:
    """The Job as the API server returns it: defaulted selector and pod labels, a uid."""
    stored = {**job, "metadata": {**job["metadata"], "uid": uid, "resourceVersion": "7"}}
    template = stored["spec"]["template"]
    template["metadata"]["labels"].update({
        "batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
        "batch.kubernetes.io/job-name": job["metadata"]["name"],
        "job-name": job["metadata"]["name"]})
    stored["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    stored["status"] = {"succeeded": 3}
    return stored


def test_shards_are_one_indexed_job_each_index_retried_alone() -> None:
    cm, job = _render(SPEC)
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == (
        "Indexed", 3, 3)
    assert spec["backoffLimitPerIndex"] == 4 and "backoffLimit" not in spec
    assert _container(job)["command"][-2:] == ["--shard", "$(JOB_COMPLETION_INDEX)"]
    assert _env(job)["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']")
    assert builders.job_shards(job) == 3
    # one process per pod: no torchrun, no rendezvous Service
    assert _container(job)["command"][0] == "zhufu" and "subdomain" not in spec["template"][
        "spec"]

    _, single = _render({})
    assert builders.job_shards(single) == 1 and single["spec"]["completionMode"] == "NonIndexed"
    assert "--shard" not in _container(single)["command"] and "JOB_COMPLETION_INDEX" not in _env(
        single)


def test_a_name_too_long_for_the_second_job_is_refused() -> None:
    import pytest

    from zhufu.operator.validation import SpecError

    name = "c" * (63 - len("-curate-all") + 1)
    validate(CURATION, name, {})  # one shard: no second Job
    with pytest.raises(SpecError, match="second Job's name"):
        validate(CURATION, name, {"shards": 2})


def test_the_second_job_is_the_same_pod_without_its_shard() -> None:
    _, job = _render(SPEC)
    job["metadata"]["ownerReferences"] = [{"apiVersion": "zhufu.dev/v1alpha1",
                                           "kind": "CurationJob", "name": "cur", "uid": "u-1",
                                           "controller": True, "blockOwnerDeletion": True}]
    whole = builders.whole_job(_as_stored(job), "cur-curate-all")
    kubernetes_validate.validate(whole, "1.37.0", strict=True)
    meta, spec = whole["metadata"], whole["spec"]
    assert meta["name"] == "cur-curate-all" and meta["ownerReferences"][0]["uid"] == "u-1"
    assert "uid" not in meta and "resourceVersion" not in meta and "status" not in whole
    assert meta["labels"]["zhufu.dev/job"] == "cur-curate-all"
    assert meta["labels"]["kueue.x-k8s.io/queue-name"] == "team-a" and spec["suspend"] is True
    assert builders.SHARDS_ANNOTATION not in meta["annotations"]
    assert meta["annotations"]["zhufu.dev/config-sha256"] == job["metadata"]["annotations"][
        "zhufu.dev/config-sha256"]
    assert (spec["completionMode"], spec["completions"], spec["backoffLimit"]) == (
        "NonIndexed", 1, 4)
    assert "selector" not in spec
    labels = spec["template"]["metadata"]["labels"]
    assert labels["zhufu.dev/job"] == "cur-curate-all"
    assert not set(labels) & {"controller-uid", "job-name", "batch.kubernetes.io/job-name",
                              "batch.kubernetes.io/controller-uid"}
    assert _container(whole)["command"] == ["zhufu", "curate", "--config",
                                            builders.CONFIG_PATH]
    assert "JOB_COMPLETION_INDEX" not in _env(whole)
    assert _container(whole)["image"] == _container(job)["image"]
    # the Job it was made from is left as it was
    assert _container(job)["command"][-1] == "$(JOB_COMPLETION_INDEX)"


async def test_shards_then_the_whole_job_then_succeeded(tmp_path: Path) -> None:
    async with emulator() as (emu, url):
        op = Operator(tmp_path, url, {})
        op.start()

        async def wait_for(check: Any, what: str) -> Any:
            return await _wait_for(check, what, op=op)

        try:
            emu.create("curationjobs", {
                "apiVersion": "zhufu.dev/v1alpha1", "kind": "CurationJob",
                "metadata": {"name": "cur", "namespace": NS},
                "spec": {"shards": 2, "outputDir": "s3://zhufu/curated"}})
            job = await wait_for(lambda: emu.get("jobs", NS, "cur-curate"), "the shards' Job")
            assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
            pods = start_pods(emu, "cur-curate")
            assert [p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                    for p in pods] == ["0", "1"]
            await wait_for(lambda: status(emu, "curationjobs", "cur").get("shards") == "0/2",
                           "status.shards 0/2")
            emu.patch("jobs", NS, "cur-curate", {"status": {"succeeded": 1, "active": 1}},
                      status=True)
            await wait_for(lambda: status(emu, "curationjobs", "cur").get("shards") == "1/2",
                           "status.shards 1/2")
            assert emu.get("jobs", NS, "cur-curate-all") is None  # not before every shard

            part = StageResult("curate", mlflow_run_id="run-shard",
                               outputs={"pairs": "s3://zhufu/curated/shard-0/pairs.json"})
            finish(emu, "cur-curate", part.to_json())
            emu.patch("jobs", NS, "cur-curate", {"status": {"succeeded": 2}}, status=True)
            whole = await wait_for(lambda: emu.get("jobs", NS, "cur-curate-all"),
                                   "the second Job, once every shard succeeded")
            parent = emu.get("curationjobs", NS, "cur")
            assert whole["metadata"]["ownerReferences"][0]["uid"] == parent["metadata"]["uid"]
            assert "--shard" not in _container(whole)["command"]
            await wait_for(lambda: status(emu, "curationjobs", "cur").get("shards") == "2/2",
                           "status.shards 2/2")
            # a part's result is not the resource's: it has not succeeded yet
            st = status(emu, "curationjobs", "cur")
            assert st["phase"] != "Succeeded" and "outputs" not in st
            await wait_for(lambda: [e for e in events_for(emu, "cur")
                                    if e[1] == "JobCreated" and "cur-curate-all" in e[2]],
                           "an Event for the second Job")

            start_pods(emu, "cur-curate-all")
            result = StageResult("curate", mlflow_run_id="run-all",
                                 outputs={"pairs": "s3://zhufu/curated/pairs.json"},
                                 registered={"zhufu-reward": "5"}, metrics={"pairs": 40.0})
            finish(emu, "cur-curate-all", result.to_json())
            await wait_for(phase_is(emu, "curationjobs", "cur", "Succeeded"), "Succeeded")
            st = status(emu, "curationjobs", "cur")
            assert st["registered"] == {"zhufu-reward": "5"} and st["mlflowRunId"] == "run-all"
            assert st["outputs"] == {"pairs": "s3://zhufu/curated/pairs.json"}
            assert st["shards"] == "2/2" and st["jobName"] == "cur-curate"

            emu.delete("curationjobs", NS, "cur")
            await wait_for(lambda: emu.get("curationjobs", NS, "cur") is None,
                           "CurationJob gone")
            assert emu.get("jobs", NS, "cur-curate") is None
            assert emu.get("jobs", NS, "cur-curate-all") is None
        finally:
            await op.stop()
