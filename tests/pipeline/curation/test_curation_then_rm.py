"""A CurationJob's whole work: curate, then train and register a reward model on the pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zhufu.pipeline import stage_runner
from zhufu.pipeline.config import CurateConfig


def test_curate_then_reward_model(curation_set: Any, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHUFU_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = CurateConfig.model_validate({
        "responses": str(curation_set.labelled), "exemplars": str(curation_set.exemplars),
        "output_dir": str(tmp_path / "out"),
        "reward_model": {"max_steps": 2, "batch_size": 4, "eval_fraction": 0.3}})
    result = stage_runner.run("curate", cfg, progress=False)
    assert result.outputs["pairs"].endswith("pairs.json")
    assert result.registered.get("zhufu-reward")
    assert any(k.startswith("rm_") for k in result.metrics)
