"""The real operator (``kopf run``) against an API server that misbehaves on ~30 % of calls.

``ChaosEmulator`` wraps ``tests/operator/kube_emulator.py``'s emulator (subclass, no edits):
for requests in the namespace other than watches (only the handlers' own calls, or every
call), a seeded draw answers 500, answers 409
Conflict (writes only), or drops the connection without an answer (what a client sees on
a timeout), each without touching the store. The test plays the Job controller as
``tests/operator/test_operator_flow.py`` does. Checked: every CR ends ``Succeeded`` with its
MLflow run id, exactly one Job exists per CR (however many POSTs were refused), and faults
really were injected. ``test_operator_flow.py::test_api_errors_are_retried_to_one_job``
(500 on the Job POST, 409 on the ConfigMap) and
``::test_restart_mid_reconcile_creates_no_duplicate_job`` cover the targeted cases.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import pytest
from kube_emulator import KubeEmulator, _error
from opharness import NS, Operator, finish, phase_is, start_pods, status, wait_for

from zhufu.operator.crds import crd
from zhufu.operator.spec import KINDS
from zhufu.pipeline.results import StageResult

pytestmark = pytest.mark.integration

RATE = 0.3
CHILDREN = ("jobs", "configmaps", "services", "events", "pods")
CR_PLURALS = tuple(k.plural for k in KINDS.values())


class ChaosEmulator(KubeEmulator):
    """Answers a seeded share of namespaced, non-watch requests with a fault."""

    def chaos(self, seed: int, rate: float, everything: bool) -> None:
        self._rng = random.Random(seed)
        self._rate = rate
        self._everything = everything
        self.injected: Counter[str] = Counter()

    def _eligible(self, request: kmock.Request) -> bool:
        path = request.url.path
        if f"/namespaces/{NS}/" not in path or request.action == kmock.action.WATCH:
            return False
        if self._everything:
            return True
        # the handlers' own calls: children (create/get/delete) and dependency look-ups;
        # not Kopf's bookkeeping PATCHes of the custom resource itself
        plural = path.split(f"/namespaces/{NS}/", 1)[1].split("/", 1)[0]
        method = str(request.method.value).upper()
        return plural in CHILDREN or (method == "GET" and plural in CR_PLURALS)

    async def _handle(self, request: kmock.Request) -> Any:
        rate = getattr(self, "_rate", 0.0)
        if rate and self._eligible(request):
            method = str(request.method.value).upper()
            u = self._rng.random()
            if u < rate / 3:
                self.injected["500"] += 1
                raise _error(500, "InternalError", "injected 500")
            if u < 2 * rate / 3 and method in ("POST", "PATCH"):
                self.injected["409"] += 1
                raise _error(409, "Conflict", "injected conflict: the object has been modified")
            if u < rate:
                self.injected["dropped"] += 1
                request.raw_request.transport.close()
                raise _error(504, "Timeout", "injected: connection dropped")
        return await super()._handle(request)


@contextlib.asynccontextmanager
async def chaos_emulator(seed: int, everything: bool
                         ) -> AsyncIterator[tuple[ChaosEmulator, str]]:
    async with ChaosEmulator() as emu, kmock.Server(emu) as server:
        for kind in KINDS.values():
            emu.install_crd(crd(kind))
        emu.create("namespaces", {"metadata": {"name": NS}})
        emu.chaos(seed, RATE, everything)
        try:
            yield emu, str(server.url).rstrip("/")
        finally:
            emu.close_watches()


def _cr(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "zhufu.dev/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


CRS = [("curationjobs", "CurationJob", "c1", "c1-curate"),
       ("curationjobs", "CurationJob", "c2", "c2-curate"),
       ("judgetrainings", "JudgeTraining", "j1", "j1-judge"),
       ("grporuns", "GRPORun", "g1", "g1-grpo")]


async def _converges(tmp_path: Path, everything: bool, env: dict[str, str] | None = None
                     ) -> None:
    async with chaos_emulator(seed=11, everything=everything) as (emu, url):
        op = Operator(tmp_path, url, env or {})
        op.start()
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            for plural, kind, name, _ in CRS:
                emu.create(plural, _cr(kind, name, {"seed": 1}))
            for plural, _, name, job in CRS:
                await wait_for(lambda job=job: emu.get("jobs", NS, job), f"Job {job}",
                               timeout=60, op=op)
                start_pods(emu, job)
                finish(emu, job, StageResult(plural, mlflow_run_id=f"run-{name}").to_json())
            for plural, _, name, _ in CRS:
                await wait_for(phase_is(emu, plural, name, "Succeeded"), f"{name} Succeeded",
                               timeout=60, op=op)
                assert status(emu, plural, name)["mlflowRunId"] == f"run-{name}"
            took = loop.time() - start
            jobs = sorted(j["metadata"]["name"] for j in emu.objects("jobs", NS))
            assert jobs == sorted(job for *_, job in CRS), jobs
            posts = [p for m, p in emu.log if m == "POST" and p.endswith("/jobs")]
            assert len(posts) >= len(CRS)
            assert sum(emu.injected.values()) >= 5 and len(emu.injected) == 3, emu.injected
            print(f"converged in {took:.1f}s; faults injected {dict(emu.injected)}; "
                  f"Job POSTs {len(posts)} for {len(CRS)} Jobs; requests {len(emu.log)}")
        finally:
            await op.stop()


@pytest.mark.slow  # ~40 s: Kopf backs off after each fault
async def test_operator_converges_through_faults_on_its_own_calls(tmp_path: Path) -> None:
    """Faults on the handlers' calls (Jobs, ConfigMaps, Events, pods, dependency GETs)."""
    await _converges(tmp_path, everything=False)


@pytest.mark.slow
async def test_operator_converges_through_faults_on_every_call(tmp_path: Path) -> None:
    """Faults on Kopf's own PATCHes of the CR too (finalizer, progress annotations): Kopf
    waits for the next change of an object whose PATCH was refused; the ``<kind>_recheck``
    timer (every 1 s here, ``ZHUFU_RECHECK_INTERVAL_S``) re-runs the idempotent path."""
    await _converges(tmp_path, everything=True, env={"ZHUFU_RECHECK_INTERVAL_S": "1"})
