"""The stage commands at the top level: ``zhufu sft``, ``curate``, ``train-rm``, ``grpo``.

Each reads one config (``--config FILE`` plus ``--set KEY=VALUE`` overrides), runs the stage
and prints its StageResult JSON on stdout. ``zhufu judge train`` is in :mod:`.judge`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from zhufu.pipeline.cli.common import ConfigOption, OverridesOption

app = typer.Typer()


@app.command("sft")
def sft(config: ConfigOption = None, overrides: OverridesOption = None) -> None:
    """Fine-tune the policy on Alpaca greetings (TRL SFTTrainer); register zhufu-policy@sft.

    Data defaults to the starter set; one MLflow run holds the config, metrics and model.
    """
    from zhufu.pipeline.config import SFTConfig, load_config
    from zhufu.pipeline.train.sft import run_sft

    typer.echo(run_sft(load_config(SFTConfig, config, overrides or [])).to_json())


@app.command("curate")
def curate(
    config: ConfigOption = None,
    overrides: OverridesOption = None,
    fresh: Annotated[bool, typer.Option(
        help="Start over: move the journal of a previous run aside instead of resuming.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Retrieval → debate → judge → reflect per candidate; best/worst per query become pairs.

    Resumes by default: answers already in the output's journal are not asked again.
    """
    from zhufu.pipeline.config import CurateConfig, load_config
    from zhufu.pipeline.curation.stage import curate as run_curate
    from zhufu.pipeline.curation.stage import set_aside_journal

    cfg = load_config(CurateConfig, config, overrides or [])
    if fresh:
        moved = set_aside_journal(cfg)
        if moved:
            typer.echo(f"previous journal moved to {moved}", err=True)
    typer.echo(run_curate(cfg, progress=progress).to_json())


@app.command("train-rm")
def train_rm(config: ConfigOption = None, overrides: OverridesOption = None) -> None:
    """Train a reward model on preference pairs (TRL RewardTrainer), report its held-out
    accuracy next to the longer-wins and n-gram baselines, register it in MLflow."""
    from zhufu.pipeline.config import RewardModelConfig, load_config
    from zhufu.pipeline.train.reward_model import run_train_rm

    typer.echo(run_train_rm(load_config(RewardModelConfig, config, overrides or [])).to_json())


@app.command("grpo")
def grpo(
    config: ConfigOption = None,
    overrides: OverridesOption = None,
    resume: Annotated[str | None, typer.Option(
        help="auto: continue from the newest checkpoint; never: start over.")] = None,
) -> None:
    """Train the policy with judge / reward-model / rule rewards; register zhufu-policy@grpo."""
    from zhufu.pipeline.config import GRPOConfig, load_config
    from zhufu.pipeline.train.grpo import run_grpo

    extra = [f"resume={resume}"] if resume else []
    typer.echo(run_grpo(load_config(GRPOConfig, config, [*(overrides or []), *extra])).to_json())
