"""``zhufu grpo``: GRPO fine-tuning of the policy (the work a GRPORun runs)."""

from __future__ import annotations

from typing import Annotated

import typer

from zhufu.pipeline.cli.common import ConfigOption, OverridesOption, load_stage_config, run_stage


def grpo(
    config: ConfigOption = None,
    overrides: OverridesOption = None,
    resume: Annotated[str | None, typer.Option(
        help="auto: continue from the newest checkpoint; never: start over.")] = None,
) -> None:
    """Train the policy with judge / reward-model / rule rewards; register zhufu-policy@grpo."""
    from zhufu.pipeline.config import GRPOConfig
    from zhufu.pipeline.train.grpo import run_grpo

    extra = [f"resume={resume}"] if resume else []
    cfg = load_stage_config(GRPOConfig, config, [*(overrides or []), *extra])
    run_stage(run_grpo, cfg)
