"""``zhufu judge``: score greetings with a judge (default: the offline principle analyser)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Judge greetings: per-dimension scores, overall score, good/bad verdict.",
                  no_args_is_help=True)


@app.command("score")
def score(
    input: Annotated[str, typer.Option("--input", "-i",
                                       help="JSONL rows with query and response.")],
    output: Annotated[Path, typer.Option("--output", "-o",
                                         help="Where to write the scored JSONL.")],
    judge: Annotated[str, typer.Option(
        "--judge", "-j", help="offline | openai:MODEL@URL | hf:PATH | judge state JSON.")
    ] = "offline",
    details: Annotated[bool, typer.Option(
        help="Also write per-dimension scores and the reason.")] = False,
) -> None:
    """Add ``score`` (float, higher is better) and ``label`` (1 good / 0 bad) to every row."""
    from zhufu.pipeline.data.errors import DataError
    from zhufu.pipeline.data.loaders import read_jsonl
    from zhufu.pipeline.judge import JudgeSpecError, load_judge

    try:
        rows = read_jsonl(input, require=("query", "response"))
        scorer = load_judge(judge)
    except (DataError, JudgeSpecError, OSError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e

    async def run() -> list:
        try:
            return await scorer.score_many([(r["query"], r["response"]) for r in rows],
                                           progress=len(rows) > 50)
        finally:
            await scorer.aclose()

    results = asyncio.run(run())
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as fh:
        for row, res in zip(rows, results, strict=True):
            out = {**row, "score": round(res.score, 4), "label": res.label}
            if details:
                out["judge"] = {"scores": res.scores, "verdict": res.verdict,
                                "reason": res.reason}
            if not res.ok:
                out["judge_error"] = res.error
            fh.write(json.dumps(out, ensure_ascii=False) + "\n")
    good = sum(r.label for r in results)
    typer.echo(f"scored {len(rows)} rows with judge {scorer.name}: {good} good, "
               f"{len(rows) - good} bad, {scorer.failures} failed -> {output}", err=True)
