"""``zhufu run``: the whole loop on the embedded default (tiny models, offline, local MLflow)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer()


@app.command("run")
def run(
    reward: Annotated[str, typer.Option(
        help="GRPO reward: judge (the trained judge), rm (the reward model) or mix (their "
        "weighted sum); a comma list (rm,judge) trains one GRPO policy per reward from the "
        "same SFT policy and compares every policy with every other.")] = "judge",
    report: Annotated[str | None, typer.Option(
        help="Write the JSON report here (default .zhufu/run/report.json).")] = None,
    grpo_steps: Annotated[int, typer.Option(min=1, help="GRPO steps.")] = 30,
    judge_rounds: Annotated[int, typer.Option(min=0, help="Adversarial judge rounds.")] = 3,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    ablate: Annotated[str, typer.Option(
        help="Comma list: debate (curation without the debate agents → its reward model → "
        "its GRPO policy), reflector (the judge without the reflector → its GRPO policy). "
        "When leaving a component out changes nothing, the report says so instead.")] = "",
    evaluator: Annotated[str | None, typer.Option(
        help="Independent evaluator of the comparison (no policy trains against it): an LLM "
        "judge, openai:MODEL@URL; default: the offline scorer fitted on test-set splits no "
        "reward saw.")] = None,
) -> None:
    """tiny models → SFT → curation → reward model → judge training → GRPO (one run per
    reward) → every policy against every other on held-out queries."""
    from zhufu.pipeline.run import RunSettings, parse_ablations, parse_rewards, run_all

    rewards = parse_rewards(reward)
    run_all(RunSettings(rewards=rewards, ablate=parse_ablations(ablate, rewards),
                        grpo_steps=grpo_steps,
                        judge_rounds=judge_rounds, seed=seed, evaluator=evaluator), report)
