"""The cluster path end to end as slow tests: the flow `make e2e` runs, without and with faults.

Each test starts the whole stack (S3, MLflow, the stand-in LLM, the one-node cluster, the
chart's operator), drives the flow through the real ``kubectl`` and checks statuses, MLflow
and the bucket (:func:`flow.check`); the faults test also stops the operator mid-curation
and kills both GRPO pods after the first checkpoint (:mod:`faults`). Minutes each.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flow import Flow
from run_e2e import run
from stack import Stack, StepFailed

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1800)]


def _run(workdir: Path, with_faults: bool) -> dict[str, object]:
    flow = Flow(started=time.monotonic(), max_steps=12 if with_faults else 4)
    with Stack(workdir) as stack:
        try:
            summary = run(stack, flow, with_faults)
        except StepFailed as e:
            pytest.fail(f"{e}\n\n{stack.diagnostics()}")
    return summary


def test_flow_judge_curation_grpo_on_two_nodes(tmp_path: Path) -> None:
    summary = _run(tmp_path, with_faults=False)
    assert set(summary["phases"].values()) == {"Succeeded"}
    assert summary["grpo_nodes"] == 2


def test_flow_survives_operator_restart_and_killed_grpo_pods(tmp_path: Path) -> None:
    summary = _run(tmp_path, with_faults=True)
    assert set(summary["phases"].values()) == {"Succeeded"}
    assert summary["faults"]["operator"]["jobs"] == 1
