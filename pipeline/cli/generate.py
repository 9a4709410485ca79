"""``zhufu generate``: greetings from any policy, to try what you trained."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer()


@app.command("generate")
def generate(
    query: Annotated[list[str], typer.Argument(help="Queries, e.g. 给妈妈的生日祝福语.")],
    model: Annotated[str, typer.Option(
        "--model", "-m", help="Policy: tiny, a local folder, models:/zhufu-policy@grpo, "
        "runs:/ID/PATH.")],
    n: Annotated[int, typer.Option("-n", min=1, max=256, help="Greetings per query.")] = 3,
    temperature: Annotated[float, typer.Option(min=0.0, max=5.0, help="0 = greedy.")] = 0.7,
    max_tokens: Annotated[int, typer.Option(min=1, max=4096)] = 64,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per greeting: "
                                          "query, text, readable, failed rules.")] = False,
) -> None:
    """Sample N greetings per query from a policy (sent as the GRPO prompts are); each is
    marked with the rules of the readability check it breaks."""
    from zhufu.pipeline.evaluation.readable import readability
    from zhufu.pipeline.evaluation.sampling import sample_greetings

    samples = sample_greetings(model, query, n=n, max_tokens=max_tokens, seed=seed,
                               temperature=temperature)
    for q, texts in zip(query, samples, strict=True):
        if not as_json:
            typer.echo(f"# {q}")
        for text in texts:
            verdict = readability(text, q)
            if as_json:
                typer.echo(json.dumps({"query": q, "text": text, "readable": verdict.ok,
                                       "failed": list(verdict.failed)}, ensure_ascii=False))
            else:
                mark = "" if verdict.ok else f"   [unreadable: {', '.join(verdict.failed)}]"
                typer.echo(f"- {text}{mark}")
