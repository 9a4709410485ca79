"""``zhufu judge``: score greetings with a judge, train the principle judge, run its ablation."""

from __future__ import annotations

from typing import Annotated

import typer

from zhufu.pipeline import aio
from zhufu.pipeline.cli.common import ConfigOption, OverridesOption
from zhufu.pipeline.cli.stages import add_stage_commands

app = typer.Typer(help="Judge greetings: per-dimension scores, overall score, good/bad verdict.",
                  no_args_is_help=True)
add_stage_commands(app, ("judge",))  # zhufu judge train


@app.command("score")
def score(
    input: Annotated[str, typer.Option("--input", "-i",
                                       help="JSONL rows with query and response.")],
    output: Annotated[str, typer.Option("--output", "-o",
                                        help="Where to write the scored JSONL (path or s3://).")],
    judge: Annotated[str, typer.Option(
        "--judge", "-j", help="offline | openai:MODEL@URL | hf:PATH | judge state JSON.")
    ] = "offline",
    details: Annotated[bool, typer.Option(
        help="Also write per-dimension scores and the reason.")] = False,
) -> None:
    """Add ``score`` (float, higher is better) and ``label`` (1 good / 0 bad) to every row."""
    from zhufu.pipeline.data import read_jsonl, write_jsonl
    from zhufu.pipeline.judge import load_judge

    rows = read_jsonl(input, require=("query", "response"))
    scorer = load_judge(judge)

    async def run() -> list:
        try:
            return await scorer.score_many([(r["query"], r["response"]) for r in rows],
                                           progress=len(rows) > 50)
        finally:
            await scorer.aclose()

    results = aio.run(run())
    scored = []
    for row, res in zip(rows, results, strict=True):
        out = {**row, "score": round(res.score, 4), "label": res.label}
        if details:
            out["judge"] = {"scores": res.scores, "verdict": res.verdict, "reason": res.reason}
        if not res.ok:
            out["judge_error"] = res.error
        scored.append(out)
    write_jsonl(scored, output)
    good = sum(r.label for r in results)
    typer.echo(f"scored {len(rows)} rows with judge {scorer.name}: {good} good, "
               f"{len(rows) - good} bad, {scorer.failures} failed -> {output}", err=True)


@app.command("ablation")
def ablation(config: ConfigOption = None, overrides: OverridesOption = None) -> None:
    """Train the judge three ways on the same splits (no adversarial rounds, no reflector,
    full), one MLflow run each, nothing registered; print the table."""
    from zhufu.pipeline import tracking
    from zhufu.pipeline.config import JudgeTrainConfig, load_config
    from zhufu.pipeline.judge.rounds import load_training_data
    from zhufu.pipeline.judge.stage import ablation_table, run_ablation

    cfg = load_config(JudgeTrainConfig, config, overrides or [])
    tracking.configure()  # an unreachable MLflow server fails before the data loads
    typer.echo(ablation_table(run_ablation(cfg, load_training_data(cfg))))
