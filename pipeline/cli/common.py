"""Options every stage command shares (``--config FILE``, ``--set KEY=VALUE``) and the rule
that a command's stdout carries its result only (:func:`result_stdout`)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer

ConfigOption = Annotated[Path | None, typer.Option(
    "--config", "-c", help="YAML file with the stage's config (see examples/).")]
OverridesOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a field: KEY=VALUE, repeatable (e.g. --set llm.concurrency=32).")]


@contextlib.contextmanager
def result_stdout() -> Iterator[TextIO]:
    """Send everything written to stdout inside the block to stderr (library prints, progress
    bars, subprocesses: the process's file descriptor 1 too, when stdout is one), and yield
    the real stdout, for the result, to be written after the block."""
    real = sys.stdout
    real.flush()
    try:
        fd = real.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stream (tests): no descriptor
        fd = -1
    saved = os.dup(fd) if fd >= 0 else -1
    try:
        if saved >= 0:
            os.dup2(sys.stderr.fileno(), fd)
        with contextlib.redirect_stdout(sys.stderr):
            yield real
    finally:
        sys.stderr.flush()
        if saved >= 0:
            os.dup2(saved, fd)
            os.close(saved)
