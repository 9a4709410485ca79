"""What every stage command shares: ``--config FILE``, ``--set KEY=VALUE``, clean errors.

A stage command is ``cfg = load_stage_config(Cls, config, overrides)`` then
``run_stage(run_fn, cfg)``: a bad config, bad data or a missing model exits with status 2
and one readable message instead of a traceback; the StageResult JSON goes to stdout.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel

ConfigOption = Annotated[Path | None, typer.Option(
    "--config", "-c", help="YAML file with the stage's config (see examples/).")]
OverridesOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a field: KEY=VALUE, repeatable (e.g. --set llm.concurrency=32).")]

C = TypeVar("C", bound=BaseModel)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_stage_config(cls: type[C], config: Path | None, overrides: list[str] | None) -> C:
    from zhufu.pipeline.config import ConfigError, load_config

    try:
        return load_config(cls, config, overrides or [])
    except ConfigError as e:
        raise fail(str(e)) from e


def expected_errors() -> tuple[type[Exception], ...]:
    """Errors that mean bad input (config, data, model spec, storage), not a bug."""
    from zhufu.pipeline.data.errors import DataError
    from zhufu.pipeline.data.storage import StorageError
    from zhufu.pipeline.models import ModelSpecError
    from zhufu.pipeline.tracking import TrackingError

    return (DataError, ModelSpecError, TrackingError, StorageError, FileNotFoundError,
            ValueError)


def run_stage(run: Callable[[C], Any], cfg: C) -> None:
    """Run a stage function; print its StageResult JSON, or a clean error with status 2."""
    try:
        result = run(cfg)
    except expected_errors() as e:
        raise fail(str(e)) from e
    typer.echo(result.to_json())
