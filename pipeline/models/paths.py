"""Where Zhufu keeps what it builds or downloads: the data directory and its sub-folders.

``$ZHUFU_HOME`` if set, else ``.zhufu/`` under the current directory. Models live under
``<data_dir>/models/``; the local MLflow store under ``<data_dir>/mlflow.db`` and
``<data_dir>/mlartifacts``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

HOME_ENV = "ZHUFU_HOME"
DEFAULT_DIRNAME = ".zhufu"


def data_dir() -> Path:
    """The data directory (created if missing), as an absolute path."""
    root = os.environ.get(HOME_ENV)
    path = Path(root).expanduser() if root else Path.cwd() / DEFAULT_DIRNAME
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """``<data_dir>/models``: built tiny models, the tokenizer and downloaded MLflow models."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def output_path(output_dir: str, *parts: str) -> str:
    """Join a stage's ``output_dir`` with ``parts``.

    A relative ``output_dir`` starting with ``.zhufu/`` (the config default) is placed under
    :func:`data_dir`, so ``ZHUFU_HOME`` moves outputs too; ``s3://`` prefixes are joined
    with ``/``; any other path is used as given (relative to the current directory).
    """
    if output_dir.startswith("s3://"):
        return "/".join([output_dir.rstrip("/"), *parts])
    path = Path(output_dir)
    if not path.is_absolute() and path.parts[:1] == (DEFAULT_DIRNAME,):
        path = data_dir().joinpath(*path.parts[1:])
    return str(path.joinpath(*parts))


def stage_output(output_dir: str, stage: str, run_id: str) -> tuple[Path, str]:
    """Where a stage saves its model: ``(local folder to write, final location)``.

    For an ``s3://`` output the local folder is a fresh temporary one that :func:`publish`
    uploads; otherwise both name the same folder under :func:`output_path`.
    """
    target = output_path(output_dir, stage, run_id)
    if target.startswith("s3://"):
        return Path(tempfile.mkdtemp(prefix=f"zhufu-{stage}-")), target
    return Path(target), target


def publish(local: Path, target: str) -> None:
    """Upload ``local`` to ``target`` when it is an ``s3://`` location (no-op otherwise)."""
    if target.startswith("s3://"):
        from zhufu.pipeline.data.storage import upload_dir

        upload_dir(local, target)
