"""``zhufu train-rm`` (train the reward model) and ``zhufu rm score`` (score JSONL rows).

Light at import: torch, TRL and MLflow are imported inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Use a trained reward model.", no_args_is_help=True)


def train_rm(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="YAML RewardModelConfig (e.g. examples/reward-model.yaml).")] = None,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a field: KEY=VALUE (repeatable), e.g. --set max_steps=20.")] = None,
) -> None:
    """Train a reward model on preference pairs (TRL RewardTrainer), report its held-out
    accuracy next to the longer-wins and n-gram baselines, register it in MLflow."""
    from zhufu.pipeline.config import ConfigError, RewardModelConfig, load_config

    try:
        cfg = load_config(RewardModelConfig, config, overrides or [])
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    from zhufu.pipeline.data.errors import DataError
    from zhufu.pipeline.tracking import TrackingError
    from zhufu.pipeline.train.reward_model import run_train_rm

    try:
        result = run_train_rm(cfg)
    except (DataError, OSError, ValueError, TrackingError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(result.to_json())


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
    from zhufu.pipeline.data.errors import DataError
    from zhufu.pipeline.models import ModelSpecError
    from zhufu.pipeline.rewards.rm import score_texts

    try:
        rows = read_jsonl(input, require=("query", "response"))
        rewards = score_texts(model, [r["query"] for r in rows], [r["response"] for r in rows],
                              batch_size=batch_size)
        write_jsonl([{**row, "reward": reward} for row, reward in zip(rows, rewards,
                                                                       strict=True)], output)
    except (DataError, ModelSpecError, OSError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(json.dumps({"rows": len(rows), "output": output}))
