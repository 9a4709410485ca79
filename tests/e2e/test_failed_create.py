"""A Job whose pods are never created is explained in the resource's status and Events.

The real operator (``kopf run``, recheck every 2 s) against the one-node cluster's Job
controller, whose pod creation the emulator's admission refuses: first for a missing
ServiceAccount (the chart's job ServiceAccount was never created), then, for a second
resource, for an exceeded ResourceQuota. The controller posts ``FailedCreate`` Events on the
Job; within one recheck interval of the first one the resource shows phase ``Pending``,
reason ``FailedCreate`` and the controller's message, and a Warning Event of its own.
No pod is ever started, so nothing but the controllers runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cluster import Cluster
from opharness import NS, Operator, events_for, status, wait_for

from zhufu.operator.crds import crd
from zhufu.operator.spec import KINDS

RECHECK_S = 2.0
pytestmark = pytest.mark.integration


def _curation(name: str, **workload: Any) -> dict[str, Any]:
    return {"apiVersion": "zhufu.dev/v1alpha1", "kind": "CurationJob",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"llm": {"backend": "offline"}, **workload}}


def _first_failed_create(cluster: Cluster, job: str) -> float | None:
    """When (monotonic) the test first saw the Job controller's FailedCreate Event."""
    return next((time.monotonic() for e in cluster.emu.objects("events", NS)
                 if e.get("reason") == "FailedCreate"
                 and (e.get("involvedObject") or {}).get("name") == job), None)


async def _explained(cluster: Cluster, op: Operator, name: str) -> tuple[dict[str, Any], float]:
    seen = await wait_for(lambda: _first_failed_create(cluster, f"{name}-curate"),
                          f"FailedCreate on {name}'s Job", timeout=30, op=op)
    await wait_for(lambda: status(cluster.emu, "curationjobs", name).get("reason")
                   == "FailedCreate", f"{name}: status reason FailedCreate",
                   timeout=RECHECK_S + 10, op=op)
    return status(cluster.emu, "curationjobs", name), time.monotonic() - seen


async def test_pods_that_cannot_be_created_show_in_status_and_events(tmp_path: Path) -> None:
    async with Cluster(tmp_path / "cluster", create_retry_s=1.0) as cluster:
        for kind in KINDS.values():
            cluster.emu.install_crd(crd(kind))
        op = Operator(tmp_path, cluster.url, {"ZHUFU_RECHECK_INTERVAL_S": f"{RECHECK_S:g}"})
        op.start()
        try:
            cluster.emu.create("curationjobs", _curation("no-account"))
            st, took = await _explained(cluster, op, "no-account")
            assert st["phase"] == "Pending"
            assert st["message"].startswith(
                'Job no-account-curate: Error creating: pods "no-account-curate-" is forbidden: '
                "error looking up service account default/zhufu-job: serviceaccount "
                '"zhufu-job" not found; the Job controller cannot create the pod'), st
            assert took <= RECHECK_S + 2.0, f"{took:.1f}s after the Job's Event"
            await wait_for(lambda: ("Warning", "FailedCreate") in [
                e[:2] for e in events_for(cluster.emu, "no-account")],
                "a Warning Event on the CurationJob", timeout=10, op=op)
            # The account exists now (pods would start): the quota is what refuses them.
            cluster.emu.create("resourcequotas", {"metadata": {"name": "q", "namespace": NS},
                                                  "spec": {"hard": {"requests.cpu": "1"}}})
            cluster.emu.delete("curationjobs", NS, "no-account")
            cluster.emu.create("serviceaccounts", {"metadata": {"name": "zhufu-job",
                                                                "namespace": NS}})
            cluster.emu.create("curationjobs", _curation("too-big", resources={"cpu": "2"}))
            st, took = await _explained(cluster, op, "too-big")
            assert "exceeded quota: q, requested: requests.cpu=2" in st["message"], st
            assert took <= RECHECK_S + 2.0, f"{took:.1f}s after the Job's Event"
            assert [p for p in cluster.emu.objects("pods", NS)
                    if p["metadata"].get("labels", {}).get("zhufu.dev/owner")] == []
        finally:
            await op.stop()
