"""``zhufu judge train --config FILE``: adversarial judge training (light at import).

Prints the StageResult JSON (MLflow run, saved judge, registered ``zhufu-judge`` version,
per-round and held-out figures). ``--ablation`` runs the three variants (no adversarial
rounds / no reflector / full) on the same splits and prints their table instead.
"""

from __future__ import annotations

from typing import Annotated

import typer

from zhufu.pipeline.cli.common import ConfigOption, OverridesOption, expected_errors, fail


def train(
    config: ConfigOption = None,
    overrides: OverridesOption = None,
    ablation: Annotated[bool, typer.Option(
        help="Run no-adversarial / no-reflector / full and print the table.")] = False,
) -> None:
    """Train the principle judge: generator vs detector rounds with a reflector; log every
    round to MLflow, keep the best round by dev accuracy, register it as zhufu-judge."""
    from zhufu.pipeline.cli.common import load_stage_config
    from zhufu.pipeline.config import JudgeTrainConfig

    cfg = load_stage_config(JudgeTrainConfig, config, overrides)
    from zhufu.pipeline import tracking
    from zhufu.pipeline.judge.rounds import load_training_data
    from zhufu.pipeline.judge.stage import ablation_table, run_ablation, run_stage

    try:
        tracking.configure()  # an unreachable MLflow server fails before the data loads
        data = load_training_data(cfg)
        if ablation:
            typer.echo(ablation_table(run_ablation(cfg, data)))
            return
        result = run_stage(cfg, data)
    except expected_errors() as e:
        raise fail(str(e)) from e
    typer.echo(result.to_json())
