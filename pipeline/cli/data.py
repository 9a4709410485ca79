"""``zhufu data ...``: check data files before a stage uses them."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="Data files: validate the paper's formats and Zhufu's own.",
                  no_args_is_help=True)


@app.command("validate")
def validate(
    path: str = typer.Argument(..., help="Local path or s3://bucket/key."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead."),
) -> None:
    """Detect the format, load every row strictly, print the format, row count and stats.

    Exits 1 with the error (file, 1-based row, field) when the file is malformed or unreadable.
    """
    from zhufu.pipeline.data.errors import DataError
    from zhufu.pipeline.data.storage import StorageError
    from zhufu.pipeline.data.validate import summarize

    try:
        summary = summarize(path)
    except (DataError, StorageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    for key, value in summary.items():
        typer.echo(f"{key}: {value}")
