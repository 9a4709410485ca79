"""``zhufu eval``: measure scorers against labelled data, with length baselines beside them."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="Evaluate judges and reward models.", no_args_is_help=True)


@app.command("agreement")
def agreement(
    data: Annotated[str, typer.Option(
        "--data", "-d", help="Labelled JSONL or ShareGPT preference pairs (path or s3://).")],
    scorer: Annotated[str, typer.Option(
        "--scorer", "-s", help="judge | judge:SPEC | rm:PATH_OR_URI")] = "judge",
) -> None:
    """Print one JSON object: n, accuracy, cohen_kappa, length-rule accuracy, bands, and for
    pairs pair accuracy, longer-wins accuracy and the near-same-length subset."""
    from zhufu.pipeline.data.errors import DataError
    from zhufu.pipeline.evaluation.agreement import ScorerSpecError
    from zhufu.pipeline.evaluation.agreement import agreement as run
    from zhufu.pipeline.judge import JudgeSpecError

    try:
        report = run(data, scorer, progress=True)
    except (DataError, ScorerSpecError, JudgeSpecError, OSError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
