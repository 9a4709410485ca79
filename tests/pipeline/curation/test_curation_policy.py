"""Candidates sampled from a policy (the tiny offline Qwen2, in-process transformers) are
curated, journaled, and not sampled again on a rerun."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zhufu.pipeline.config import CurateConfig
from zhufu.pipeline.curation.stage import run_curation

pytestmark = pytest.mark.slow


def test_policy_samples_are_curated_and_journaled(curation_set: Any, tmp_path: Path) -> None:
    cfg = CurateConfig.model_validate({
        "responses": str(curation_set.labelled), "exemplars": str(curation_set.exemplars),
        "policy": "tiny", "samples_per_query": 2, "sample_max_tokens": 16, "max_queries": 2,
        "queries": None, "output_dir": str(tmp_path / "out"), "reflect": False})
    first = run_curation(cfg, progress=False)
    sampled = [t for t in first.traces if t["source"] == "policy"]
    assert first.metrics["candidates_sampled"] == len(sampled) >= 1
    assert {t["query"] for t in sampled} <= set(curation_set.queries[:2])
    journal = (tmp_path / "out" / "journal.jsonl").read_text(encoding="utf-8")
    assert journal.count('"kind": "sample"') == 4
    again = run_curation(cfg, progress=False)
    assert again.metrics["calls"] == 0 and again.pairs == first.pairs
    assert [t["response"] for t in again.traces] == [t["response"] for t in first.traces]
