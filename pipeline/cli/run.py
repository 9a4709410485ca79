"""``zhufu run``: the whole loop on the embedded default (tiny models, offline, local MLflow)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer()


@app.command("run")
def run(
    reward: Annotated[str, typer.Option(
        help="GRPO reward: judge (the trained judge), rm (the reward model) or mix.")] = "judge",
    report: Annotated[str | None, typer.Option(
        help="Write the JSON report here (default .zhufu/run/report.json).")] = None,
    grpo_steps: Annotated[int, typer.Option(min=1, help="GRPO steps.")] = 30,
    judge_rounds: Annotated[int, typer.Option(min=0, help="Adversarial judge rounds.")] = 3,
    seed: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """tiny models → SFT → curation → reward model → judge training → GRPO → SFT vs GRPO."""
    from zhufu.pipeline.errors import ConfigError
    from zhufu.pipeline.run import RunSettings, run_all

    if reward not in ("judge", "rm", "mix"):
        raise ConfigError(f"--reward: expected judge, rm or mix, got {reward!r}")
    run_all(RunSettings(reward=reward, grpo_steps=grpo_steps, judge_rounds=judge_rounds,
                        seed=seed), report)
