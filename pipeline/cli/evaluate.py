"""``zhufu eval``: scorers against labelled data (length baselines beside them), a judge against
the project's own test sets, and two policies against each other on held-out prompts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Evaluate judges, reward models and policies.", no_args_is_help=True)


@app.command("agreement")
def agreement(
    data: Annotated[str, typer.Option(
        "--data", "-d", help="Labelled JSONL or ShareGPT preference pairs (path or s3://).")],
    scorer: Annotated[str, typer.Option(
        "--scorer", "-s", help="judge | judge:SPEC | rm:PATH_OR_URI")] = "judge",
) -> None:
    """Print one JSON object: n, accuracy, cohen_kappa, length-rule accuracy, bands, and for
    pairs pair accuracy, longer-wins accuracy and the near-same-length subset."""
    from zhufu.pipeline.evaluation.agreement import agreement as run

    typer.echo(json.dumps(run(data, scorer, progress=True), ensure_ascii=False, indent=2))


@app.command("compare")
def compare(
    a: Annotated[str, typer.Option("--a", help="Baseline policy: path, tiny or models:/ URI.")
                 ] = "models:/zhufu-policy@sft",
    b: Annotated[str, typer.Option("--b", help="Candidate policy.")] = "models:/zhufu-policy@grpo",
    policy: Annotated[list[str] | None, typer.Option(
        "--policy", help="NAME=SPEC, repeatable (at least two; replaces --a/--b): every policy "
        "is compared with every later one, the first is the baseline.")] = None,
    prompts: Annotated[str | None, typer.Option(
        help="Held-out prompts: verl parquet (e.g. grpo_test.parquet) or query txt; "
        "default: the starter set.")] = None,
    max_prompts: Annotated[int, typer.Option(min=1)] = 64,
    samples_per_prompt: Annotated[int, typer.Option(
        min=1, help="Answers per prompt from each policy (compared pairwise).")] = 1,
    judge: Annotated[str | None, typer.Option(help="Judge spec (default: the default judge).")
                     ] = None,
    reward_model: Annotated[str | None, typer.Option("--rm", help="Also score with this RM.")
                            ] = None,
    evaluator: Annotated[str | None, typer.Option(
        help="Also score with an evaluator no policy trained against: an LLM judge "
        "(openai:MODEL@URL) or held-out (the offline scorer fitted on test-set splits no "
        "reward saw).")] = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap rounds for the CIs.")] = 1000,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
    no_mlflow: Annotated[bool, typer.Option(help="Do not log the comparison to MLflow.")
                         ] = False,
) -> None:
    """Judge scores on five dimensions, RM scores, length, readable share, win rate and LC
    win rate (with 95 % bootstrap intervals) for policy B against policy A (or every pair of
    ``--policy`` policies), by every evaluator; JSON + PNG, logged to MLflow. Without
    ``--policy`` the report's policies are named ``a`` and ``b``."""
    from zhufu.pipeline.evaluation.compare import compare_policies, plot_comparison
    from zhufu.pipeline.evaluation.evaluators import independent_evaluator

    policies = _named_policies(policy) if policy else {"a": a, "b": b}
    extra = {}
    if evaluator:
        extra["independent"] = independent_evaluator(None if evaluator == "held-out"
                                                      else evaluator)
    result = compare_policies(policies, prompts=prompts, max_prompts=max_prompts,
                              judge=judge, reward_model=reward_model, bootstrap=bootstrap,
                              samples_per_prompt=samples_per_prompt, evaluators=extra)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    out = report or Path("compare.json")
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text, encoding="utf-8")
    png = out.with_suffix(".png")
    plot_comparison(result, str(png))
    if not no_mlflow:
        import mlflow

        from zhufu.pipeline import tracking
        from zhufu.pipeline.run_summary import pairwise_metrics

        tracking.configure()
        with mlflow.start_run(experiment_id=tracking.ensure_experiment("zhufu"),
                              run_name="eval-compare", tags={"zhufu.stage": "eval"}):
            mlflow.log_params({**policies, "prompts": prompts or "starter"})
            tracking.log_metrics({**pairwise_metrics(result),
                                  **{f"readable_share/{k}": v["readable_share"]
                                     for k, v in result["policies"].items()}})
            mlflow.log_dict(result, "compare.json")
            tracking.log_png(png)
    typer.echo(text)


def _named_policies(items: list[str]) -> dict[str, str]:
    """``["sft=SPEC", "grpo=SPEC"]`` → ``{"sft": SPEC, "grpo": SPEC}`` (order kept)."""
    from zhufu.pipeline.errors import ConfigError

    out: dict[str, str] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise ConfigError(f"--policy: expected NAME=SPEC, got {item!r}")
        if name.strip() in out:
            raise ConfigError(f"--policy: {name.strip()!r} given twice")
        out[name.strip()] = spec.strip()
    if len(out) < 2:
        raise ConfigError(f"--policy: need at least two policies, got {len(out)}")
    return out


@app.command("judge")
def judge(
    judge: Annotated[str, typer.Option(
        "--judge", "-j", help="offline (the default judge) | models:/zhufu-judge@ALIAS | a judge "
        "state JSON | openai:MODEL@URL | hf:PATH | rm:PATH_OR_URI (a reward model: scores "
        "only)")] = "offline",
    split: Annotated[list[str] | None, typer.Option(
        "--split", help="Only these test-set splits: tune, held_out, final (repeatable; "
        "default all).")] = None,
    good: Annotated[list[str] | None, typer.Option(
        "--good", help="More good greetings for the degenerate AUC: the chosen side of "
        "ShareGPT preference pairs (path or s3://), repeatable.")] = None,
    held_out: Annotated[str | None, typer.Option(
        "--held-out", help="Preference pairs (ShareGPT path or s3://): also report pair "
        "accuracy on the split `zhufu train-rm` holds out of them (--eval-fraction, --seed), "
        "e.g. the paper's reward_data_train.json; their chosen texts join the good greetings "
        "of the degenerate AUC, as in train-rm's suite/degenerate_auc.")] = None,
    eval_fraction: Annotated[float, typer.Option(
        "--eval-fraction", help="train-rm's evalFraction for --held-out.")] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="train-rm's seed for --held-out.")] = 0,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Also write the full report (with the worst items) as JSON.")] = None,
) -> None:
    """Test a judge before optimising against it: run it over the project's principle pairs
    and degenerate set and print, per kind, the share of degenerate answers labelled bad, the
    AUC of good greetings against them, and pair / label accuracy on the principle pairs.
    A reward model (``rm:``) is reported twice: its raw score, and the score GRPO's ``rm``
    reward optimises (raw, with the degeneracy guard: docs/reward-model.md)."""
    from zhufu.pipeline.errors import ConfigError
    from zhufu.pipeline.evaluation import judge_suite as S
    from zhufu.pipeline.judge.testsets import SPLITS

    splits = tuple(split or SPLITS)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ConfigError(f"--split {unknown[0]!r}: use one of {', '.join(SPLITS)}")
    if not 0 < eval_fraction < 1:
        raise ConfigError(f"--eval-fraction must be in (0, 1), got {eval_fraction}")
    goods = [g for uri in good or [] for g in S.chosen_of(uri)]
    pairs = S.held_out_pairs(held_out, eval_fraction, seed) if held_out else []
    goods += [(p.query, p.chosen) for p in pairs]
    if judge.startswith("rm:"):
        raw = S.cached(S.rm_scorer(judge[3:]))
        guarded = S.guarded_scorer(raw, S.guard_floor(raw))
        report: dict[str, Any] = {"judge": judge, **S.run_suite(raw, goods, splits, pairs)}
        report["guarded"] = S.run_suite(guarded, goods, splits, pairs)
        report["guarded"]["vetoed"] = guarded.vetoed  # type: ignore[attr-defined]
        typer.echo(f"reward model {judge[3:]}: raw score")
        typer.echo(S.format_report(report))
        typer.echo(f"\nreward model {judge[3:]}: as GRPO's rm reward (degeneracy guard on: "
                   f"{report['guarded']['vetoed']} texts vetoed)")
        typer.echo(S.format_report(report["guarded"]))
    else:
        report = {"judge": judge, **S.run_suite(S.judge_scorer(judge, progress=True), goods,
                                                splits, pairs)}
        failures = report["failures"]
        typer.echo(f"judge {judge}" + (f" ({failures} failed judgements, scored neutral)"
                                       if failures else ""))
        typer.echo(S.format_report(report))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
