"""The ``<kind>_recheck`` timer: progress lost to a refused PATCH is recovered without any
further change of the object (real ``kopf run`` against the emulator, 1 s interval).

- Kopf's own PATCH adding its finalizer to a new CR answered 409 once: Kopf logs the error
  and waits for the next change of the object, which never comes; the timer reconciles and
  the CR gets its one Job.
- Every status write that would record ``Succeeded`` refused while the Job's and pods'
  events are handled: no event is left to retry it; the timer recomputes the status from the
  Job and pods.

``tests/reliability/test_operator_api_faults.py`` runs the same under ~30 % faults on every
call (``-m slow``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from opharness import NS, Operator, emulator, finish, phase_is, start_pods, status, wait_for

from zhufu.pipeline.results import StageResult

FAST = {"ZHUFU_RECHECK_INTERVAL_S": "1"}


def _cr(name: str) -> dict[str, Any]:
    return {"apiVersion": "zhufu.dev/v1alpha1", "kind": "CurationJob",
            "metadata": {"name": name, "namespace": NS}, "spec": {"seed": 1}}


def _method(r: Any) -> str:
    return str(r.method.value).upper()


async def test_refused_finalizer_patch_still_gets_its_job(tmp_path: Path) -> None:
    async with emulator() as (emu, url):
        refused: list[str] = []

        def finalizer_patch(r: Any) -> bool:
            hit = (_method(r) == "PATCH" and r.name == "r1" and r.subresource is None
                   and "finalizers" in r.text)
            if hit:
                refused.append(r.text)
            return hit

        emu.fail_next(finalizer_patch, 409)
        op = Operator(tmp_path, url, FAST)
        op.start()
        try:
            emu.create("curationjobs", _cr("r1"))
            await wait_for(lambda: emu.get("jobs", NS, "r1-curate"), "Job after the refused "
                           "finalizer PATCH", timeout=20, op=op)
            assert len(refused) == 1, refused
            start_pods(emu, "r1-curate")
            finish(emu, "r1-curate", StageResult("curate", mlflow_run_id="m1").to_json())
            await wait_for(phase_is(emu, "curationjobs", "r1", "Succeeded"), "Succeeded", op=op)
            assert status(emu, "curationjobs", "r1")["mlflowRunId"] == "m1"
            assert [j["metadata"]["name"] for j in emu.objects("jobs", NS)] == ["r1-curate"]
            await wait_for(lambda: "zhufu.dev/cleanup" in (
                emu.get("curationjobs", NS, "r1")["metadata"].get("finalizers") or []),
                "Kopf's finalizer, added once the status writes woke it", op=op)
        finally:
            await op.stop()


async def test_lost_status_write_is_resynced_from_the_job(tmp_path: Path) -> None:
    async with emulator() as (emu, url):
        blocking = True
        refused: list[str] = []

        def success_write(r: Any) -> bool:
            hit = (blocking and _method(r) == "PATCH" and r.name == "s1"
                   and r.subresource == "status"
                   and json.loads(r.text or "{}").get("status", {}).get("phase") == "Succeeded")
            if hit:
                refused.append(r.url.path)
            return hit

        emu.fail_next(success_write, 500, times=10**6)
        op = Operator(tmp_path, url, FAST)
        op.start()
        try:
            emu.create("curationjobs", _cr("s1"))
            await wait_for(lambda: emu.get("jobs", NS, "s1-curate"), "Job", op=op)
            start_pods(emu, "s1-curate")
            await wait_for(lambda: status(emu, "curationjobs", "s1").get("jobName"),
                           "status naming the Job", op=op)
            finish(emu, "s1-curate", StageResult("curate", mlflow_run_id="m2").to_json())
            await wait_for(lambda: refused, "a refused Succeeded write", op=op)
            await asyncio.sleep(1.5)  # every Job/pod event handled (and refused) by now
            assert status(emu, "curationjobs", "s1")["phase"] != "Succeeded"
            blocking = False
            await wait_for(phase_is(emu, "curationjobs", "s1", "Succeeded"),
                           "Succeeded via the recheck timer", timeout=10, op=op)
            assert status(emu, "curationjobs", "s1")["mlflowRunId"] == "m2"
        finally:
            await op.stop()


def test_recheck_interval_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from zhufu.operator.settings import OperatorSettings, SettingsError, load_settings

    assert OperatorSettings.model_fields["recheck_interval_s"].default == 30.0
    monkeypatch.setenv("ZHUFU_RECHECK_INTERVAL_S", "2.5")
    assert load_settings().recheck_interval_s == 2.5
    for bad in ("0", "-1", "soon"):
        monkeypatch.setenv("ZHUFU_RECHECK_INTERVAL_S", bad)
        with pytest.raises(SettingsError, match="ZHUFU_RECHECK_INTERVAL_S"):
            load_settings()
