"""Trained judges in MLflow: load them back by URI.

A judge is plain JSON (:class:`~zhufu.pipeline.judge.JudgeState`: principles' extra rules,
feature weights, phrase rules, settings); the judge-train stage registers it as a pyfunc
model (:mod:`zhufu.pipeline.judge.pyfunc`, the state under ``artifacts/judge/``), a version
of the registered model (``zhufu-judge`` by default).
:func:`load_judge` resolves ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``,
``models:/NAME/latest`` and ``runs:/RUN_ID/judge`` through :func:`resolve_mlflow_judge`,
registered here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from zhufu.pipeline.judge.judge import (
    Judge,
    JudgeSpecError,
    JudgeState,
    register_judge_resolver,
    saved_judge,
)

ARTIFACT_PATH = "judge"


def _has_store() -> bool:
    """Is there an MLflow store to ask? (Never creates a local one just to fail.)"""
    if os.environ.get("MLFLOW_TRACKING_URI", "").strip():
        return True
    from zhufu.pipeline.tracking import local_store

    return Path(local_store()[0].removeprefix("sqlite:///")).is_file()


def load_state(uri: str) -> JudgeState:
    """Download the judge state a ``models:/`` or ``runs:/`` URI points at."""
    import mlflow

    from zhufu.pipeline.tracking import configure

    if not _has_store():
        raise JudgeSpecError(f"judge spec {uri!r}: no MLflow store here (set "
                             "MLFLOW_TRACKING_URI or train a judge first)")
    configure()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except Exception as e:  # noqa: BLE001 - MLflow raises many kinds; say which URI
            raise JudgeSpecError(f"judge spec {uri!r}: cannot download it from MLflow: "
                                 f"{e}") from e
        from zhufu.pipeline.models.mlflow_flavor import judge_state_dir

        return JudgeState.load(judge_state_dir(local if local.is_dir() else local.parent))


def resolve_mlflow_judge(uri: str) -> Judge:
    """The :class:`Judge` a ``models:/`` or ``runs:/`` URI names."""
    return saved_judge(load_state(uri), uri)


register_judge_resolver("models:/", resolve_mlflow_judge)
register_judge_resolver("runs:/", resolve_mlflow_judge)
