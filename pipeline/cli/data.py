"""``zhufu data ...``: check data files before a stage uses them."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="Data files: validate the paper's formats and Zhufu's own.",
                  no_args_is_help=True)


@app.command("validate")
def validate(
    paths: Annotated[list[str], typer.Argument(help="Local paths or s3://bucket/key URIs.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file.")] = False,
) -> None:
    """Detect each file's format, load every row strictly, print format, row count and stats.

    Every file is checked; the command exits 1 if any is malformed or unreadable, printing
    the error (file, 1-based row, field) on stderr.
    """
    from zhufu.pipeline.data.errors import DataError
    from zhufu.pipeline.data.storage import StorageError
    from zhufu.pipeline.data.validate import summarize

    failed = False
    for index, path in enumerate(paths):
        try:
            summary = summarize(path)
        except (DataError, StorageError) as exc:
            typer.echo(f"error: {exc}", err=True)
            failed = True
            continue
        if as_json:
            typer.echo(json.dumps(summary, ensure_ascii=False))
            continue
        if index:
            typer.echo("")
        for key, value in summary.items():
            typer.echo(f"{key}: {value}")
    if failed:
        raise typer.Exit(1)
