"""``ZHUFU_NAMESPACE`` decides what the operator watches (``zhufu-operator``, as the chart runs
it): set, only that namespace's resources get Jobs; empty, every namespace's do. The real
operator runs against the API emulator (tests/operator/kube_emulator.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from opharness import NS, Operator, emulator, wait_for

from zhufu.operator.main import kopf_args
from zhufu.operator.settings import OperatorSettings, SettingsError

OTHER = "team-b"


def _cr(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "zhufu.dev/v1alpha1", "kind": "CurationJob",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"seed": 1}}


def test_kopf_scope_follows_the_setting() -> None:
    one = OperatorSettings.model_construct(namespace="team-a")
    everywhere = OperatorSettings.model_construct(namespace="")
    assert kopf_args(one, ["--verbose"]) == [
        "run", "--standalone", "-m", "zhufu.operator.handlers", "--namespace=team-a",
        "--verbose"]
    assert kopf_args(everywhere)[-1] == "--all-namespaces"
    for flag in (["-n", "x"], ["--namespace=x"], ["-A"], ["--all-namespaces"]):
        with pytest.raises(SettingsError, match="ZHUFU_NAMESPACE"):
            kopf_args(one, flag)


async def test_single_namespace_operator_ignores_other_namespaces(tmp_path: Path) -> None:
    async with emulator() as (emu, url):
        emu.create("namespaces", {"metadata": {"name": OTHER}})
        op = Operator(tmp_path, url, {"ZHUFU_NAMESPACE": NS})
        op.start()
        try:
            emu.create("curationjobs", _cr("theirs", OTHER))
            emu.create("curationjobs", _cr("ours", NS))
            await wait_for(lambda: emu.get("jobs", NS, "ours-curate"), "Job in the watched "
                           "namespace", op=op)
            await asyncio.sleep(1.0)  # time enough to have handled the other one too
            assert emu.objects("jobs", OTHER) == []
            assert not (emu.get("curationjobs", OTHER, "theirs") or {}).get("status")
        finally:
            await op.stop()
        # The same resources, the setting empty: every namespace is watched.
        everywhere = Operator(tmp_path / "all", url, {"ZHUFU_NAMESPACE": ""})
        everywhere.workdir.mkdir()
        everywhere.start()
        try:
            await wait_for(lambda: emu.get("jobs", OTHER, "theirs-curate"),
                           "Job in the other namespace once all are watched", op=everywhere)
        finally:
            await everywhere.stop()
