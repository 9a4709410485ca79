"""``zhufu rm score``: score JSONL rows with a trained reward model (``zhufu train-rm`` trains
one; it is a stage command, see :mod:`.stages`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="Use a trained reward model.", no_args_is_help=True)


@app.command("score")
def score(
    model: Annotated[str, typer.Option(
        "--model", "-m", help="Reward model: local dir, tiny-rm, or models:/NAME@ALIAS etc.")],
    input: Annotated[str, typer.Option(
        "--input", "-i", help="JSONL rows with 'query' and 'response' (path or s3://).")],
    output: Annotated[str, typer.Option(
        "--output", "-o", help="JSONL written with 'reward' added (path or s3://).")],
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per forward pass.")] = 32,
) -> None:
    """Add a float ``reward`` to every row, keeping the input order and all other fields."""
    from zhufu.pipeline.data import read_jsonl, write_jsonl
    from zhufu.pipeline.rewards.rm import score_texts

    rows = read_jsonl(input, require=("query", "response"))
    rewards = score_texts(model, [r["query"] for r in rows], [r["response"] for r in rows],
                          batch_size=batch_size)
    write_jsonl([{**row, "reward": reward} for row, reward in zip(rows, rewards, strict=True)],
                output)
    typer.echo(json.dumps({"rows": len(rows), "output": output}))
