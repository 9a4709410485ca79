"""The operator as a confused deputy, each attack from team-a's custom resource (issue 17
item 5): it must neither adopt nor delete objects it did not make, read status only from its
Job's own pods, and turn a permanent API refusal into ``Failed`` instead of retrying it
every 2 s forever."""

from __future__ import annotations

import asyncio

import pytest
from opharness import wait_for
from tenancy import ATTACKER, Cluster

from zhufu.pipeline.results import StageResult

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def _foreign(cluster: Cluster, plural: str, name: str, **body: object) -> dict:
    return cluster.emu.create(plural, {"metadata": {"name": name, "namespace": ATTACKER,
                                                    "labels": {"app": "someone-else"}}, **body})


async def test_existing_object_of_a_childs_name_is_not_adopted(cluster: Cluster) -> None:
    """A ConfigMap ``prod-db-grpo-config`` (someone else's) would have become the config of
    a GRPORun named ``prod-db``."""
    _foreign(cluster, "configmaps", "prod-db-grpo-config", data={"config.yaml": "x: 1"})
    cluster.submit("GRPORun", "prod-db", {})
    st = await cluster.outcome("GRPORun", "prod-db")
    assert (st["phase"], st["reason"]) == ("Failed", "NotOwned"), st
    assert st["message"].startswith("ConfigMap 'prod-db-grpo-config': already exists and is "
                                    "not owned by this GRPORun"), st["message"]
    cm = cluster.emu.get("configmaps", ATTACKER, "prod-db-grpo-config")
    assert cm["data"] == {"config.yaml": "x: 1"} and not cm["metadata"].get("ownerReferences")
    assert cluster.emu.get("jobs", ATTACKER, "prod-db-grpo") is None


async def test_delete_leaves_objects_it_does_not_own(cluster: Cluster) -> None:
    """Deleting a CurationJob ``nightly`` used to delete the Job ``nightly-curate`` whoever
    made it."""
    _foreign(cluster, "jobs", "nightly-curate", spec={"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}})
    cluster.submit("CurationJob", "nightly", {})
    await cluster.outcome("CurationJob", "nightly")
    cluster.emu.delete("curationjobs", ATTACKER, "nightly")
    await wait_for(lambda: cluster.emu.get("curationjobs", ATTACKER, "nightly") is None,
                   "the CurationJob deleted", op=cluster.op)
    job = cluster.emu.get("jobs", ATTACKER, "nightly-curate")
    assert job is not None and job["metadata"]["labels"] == {"app": "someone-else"}


async def test_own_children_are_still_deleted(cluster: Cluster) -> None:
    cluster.submit("CurationJob", "mine", {})
    await cluster.outcome("CurationJob", "mine")
    cluster.emu.delete("curationjobs", ATTACKER, "mine")
    await wait_for(lambda: cluster.emu.get("curationjobs", ATTACKER, "mine") is None,
                   "the CurationJob deleted", op=cluster.op)
    assert cluster.emu.get("jobs", ATTACKER, "mine-curate") is None
    assert cluster.emu.get("configmaps", ATTACKER, "mine-curate-config") is None


def _terminated(cluster: Cluster, pod: str, result: StageResult) -> None:
    cluster.emu.patch("pods", ATTACKER, pod, {"status": {"phase": "Succeeded",
                                                         "containerStatuses": [{
        "name": "trainer", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
        "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                 "message": result.to_json()}}}]}}, status=True)


async def test_pod_labelled_like_ours_cannot_write_status(cluster: Cluster) -> None:
    """A pod someone else creates with the Job's Zhufu labels claimed the run registered a
    model of its choosing (``status.registered`` feeds the next GRPORun)."""
    job = await cluster.job("GRPORun", "forge", {})
    labels = {k: v for k, v in job["spec"]["template"]["metadata"]["labels"].items()
              if k.startswith(("zhufu.dev/", "app.kubernetes.io/"))}
    cluster.emu.create("pods", {"metadata": {
        "name": "forge-grpo-aaaa", "namespace": ATTACKER, "labels": labels,
        "annotations": {"batch.kubernetes.io/job-completion-index": "0"}},
        "spec": {"containers": [{"name": "trainer", "image": "busybox"}]}})
    _terminated(cluster, "forge-grpo-aaaa", StageResult(
        "grpo", mlflow_run_id="forged", registered={"team-a.zhufu-policy": "666"}))
    # the Job controller's own pod, then the Job completes
    real = cluster.emu.create("pods", {"metadata": {
        "name": "forge-grpo-real", "namespace": ATTACKER,
        "labels": job["spec"]["template"]["metadata"]["labels"],
        "annotations": {"batch.kubernetes.io/job-completion-index": "0"},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "forge-grpo",
                             "uid": job["metadata"]["uid"], "controller": True}]},
        "spec": job["spec"]["template"]["spec"]})
    _terminated(cluster, real["metadata"]["name"], StageResult(
        "grpo", mlflow_run_id="real", registered={"team-a.zhufu-policy": "7"}))
    cluster.emu.patch("jobs", ATTACKER, "forge-grpo", {"status": {"succeeded": 1, "conditions": [
        {"type": "Complete", "status": "True", "reason": "CompletionsReached",
         "lastTransitionTime": "2026-01-01T01:00:00Z"}]}}, status=True)
    await wait_for(lambda: cluster.status("GRPORun", "forge").get("phase") == "Succeeded",
                   "GRPORun Succeeded", op=cluster.op)
    st = cluster.status("GRPORun", "forge")
    assert (st["mlflowRunId"], st["registered"]) == ("real", {"team-a.zhufu-policy": "7"})


@pytest.mark.parametrize("code", [403, 422])
async def test_permanent_api_refusal_fails_instead_of_retrying(cluster: Cluster,
                                                               code: int) -> None:
    """A 403 (quota) or 422 (invalid) answer to the Job's creation was retried every 2 s
    forever with nothing in the status."""
    name = f"refused-{code}"
    cluster.emu.fail_next(lambda r: str(r.method.value).upper() == "POST"
                          and r.url.path == f"/apis/batch/v1/namespaces/{ATTACKER}/jobs",
                          status=code, times=1)
    cluster.submit("CurationJob", name, {})
    st = await cluster.outcome("CurationJob", name)
    assert (st["phase"], st["reason"]) == ("Failed", "APIRefused"), st
    assert st["message"].startswith(f"Job '{name}-curate': the API server refused to create "
                                    f"it: {code} "), st["message"]
    assert f"injected {code} for the test" in st["message"]
    await asyncio.sleep(3.0)  # a retry (every 2 s) would now create the Job
    assert cluster.emu.get("jobs", ATTACKER, f"{name}-curate") is None
