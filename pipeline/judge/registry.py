"""Trained judges in MLflow: log a judge state, register it, and load it back by URI.

A judge is plain JSON (:class:`~zhufu.pipeline.judge.JudgeState`: principles' extra rules,
feature weights, phrase rules, settings), so it is versioned as an artifact-only registered
model: the run's ``judge/judge.json`` artifact, and a version of the registered model
(``zhufu-judge`` by default) whose source is that folder. :func:`load_judge` resolves
``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``models:/NAME/latest`` and
``runs:/RUN_ID/judge`` through :func:`resolve_mlflow_judge`, registered here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from zhufu.pipeline.judge.judge import (
    STATE_FILE,
    Judge,
    JudgeSpecError,
    JudgeState,
    _backend_for,
    register_judge_resolver,
)

ARTIFACT_PATH = "judge"


def log_and_register(state: JudgeState, name: str = "zhufu-judge", alias: str | None = None,
                     tags: dict[str, str] | None = None) -> str:
    """Log ``state`` to the active MLflow run and register it as a version of ``name``.

    Returns the version number (a string).
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from zhufu import __version__

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_and_register needs an active MLflow run")
    with tempfile.TemporaryDirectory() as tmp:
        state.save(Path(tmp) / STATE_FILE)
        mlflow.log_artifacts(tmp, artifact_path=ARTIFACT_PATH)
    client = MlflowClient()
    try:
        client.create_registered_model(name, description="Zhufu principle judge (JSON state)")
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    mv = client.create_model_version(
        name, source=f"{run.info.artifact_uri}/{ARTIFACT_PATH}", run_id=run.info.run_id,
        tags={"zhufu.version": __version__, "zhufu.kind": "judge",
              **{k: str(v) for k, v in (tags or {}).items()}})
    if alias:
        client.set_registered_model_alias(name, alias, str(mv.version))
    return str(mv.version)


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
        return JudgeState.load(local if local.is_dir() else local.parent)


def resolve_mlflow_judge(uri: str) -> Judge:
    """The :class:`Judge` a ``models:/`` or ``runs:/`` URI names."""
    state = load_state(uri)
    return Judge(_backend_for(state.backend), state)


register_judge_resolver("models:/", resolve_mlflow_judge)
register_judge_resolver("runs:/", resolve_mlflow_judge)
