"""``zhufu run``: the whole paper in miniature, offline, on one CPU machine.

tiny models → SFT on the starter greetings → multi-agent curation of the SFT policy's
samples (offline analyser backend) → reward model on the curated pairs → adversarial judge
training → GRPO with the judge (or RM, or both) → SFT vs GRPO on held-out queries → registry.

Every stage runs through the same wrapper as its own command (``zhufu sft``…), from the
stage table, with a small config; each logs its own MLflow run nested under one ``run``
parent. Queries are split once (``starter_split``): stages train on the training queries
and the comparison uses only held-out ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from zhufu.pipeline.config import (
    CurateConfig,
    GRPOConfig,
    JudgeTrainConfig,
    RewardModelConfig,
    RewardSpec,
    SFTConfig,
    StageConfig,
)
from zhufu.pipeline.results import StageResult
from zhufu.pipeline.stage_runner import run_stage
from zhufu.pipeline.stages import STAGES

RewardChoice = Literal["judge", "rm", "mix"]


@dataclass
class RunSettings:
    """Knobs of the embedded default (sized for a 2-core CPU in ≤ 10 minutes)."""

    reward: RewardChoice = "judge"
    sft_epochs: float = 5.0
    sft_learning_rate: float = 1e-2
    curate_samples: int = 2
    rm_epochs: float = 2.0
    judge_rounds: int = 3
    grpo_steps: int = 30
    compare_prompts: int = 48
    compare_samples: int = 4
    seed: int = 0
    experiment: str = "zhufu-run"


@dataclass
class RunState:
    """What the stages produced so far (URIs and figures), for the next stage and the report."""

    work: Path
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _prepare_data(state: RunState, s: RunSettings) -> None:
    from zhufu.pipeline.data import (
        starter_labelled,
        starter_sft,
        starter_split,
        write_labelled,
        write_queries,
        write_sft,
    )

    train, held_out = starter_split(held_out_fraction=0.25, seed=s.seed)
    keep = set(train)
    files = {"sft": "sft_train.json", "train_queries": "train_queries.txt",
             "held_out_queries": "held_out_queries.txt", "dev_labels": "labelled_train.jsonl"}
    paths = {k: str(state.work / v) for k, v in files.items()}
    write_sft(starter_sft(train), paths["sft"])
    write_queries(train, paths["train_queries"])
    write_queries(held_out, paths["held_out_queries"])
    write_labelled([ex for ex in starter_labelled() if ex.query in keep], paths["dev_labels"])
    state.outputs.update(paths)
    state.metrics.update({"queries/train": len(train), "queries/held_out": len(held_out)})


def _sft(state: RunState, s: RunSettings) -> SFTConfig:
    return SFTConfig(experiment=s.experiment, data=state.outputs["sft"],
                     num_epochs=s.sft_epochs, learning_rate=s.sft_learning_rate,
                     batch_size=16, seed=s.seed)


def _curate(state: RunState, s: RunSettings) -> CurateConfig:
    return CurateConfig(
        experiment=s.experiment, queries=state.outputs["train_queries"],
        policy=state.outputs["sft_policy"], samples_per_query=s.curate_samples,
        responses=state.outputs["dev_labels"], dev_labels=state.outputs["dev_labels"],
        output_dir=str(state.work / "curation"), seed=s.seed)


def _train_rm(state: RunState, s: RunSettings) -> RewardModelConfig:
    return RewardModelConfig(experiment=s.experiment, data=state.outputs["pairs"],
                             num_epochs=s.rm_epochs, seed=s.seed, eval_fraction=0.2)


def _train_judge(state: RunState, s: RunSettings) -> JudgeTrainConfig:
    return JudgeTrainConfig(experiment=s.experiment, queries=state.outputs["train_queries"],
                            rounds=s.judge_rounds, seed=s.seed)


def _grpo(state: RunState, s: RunSettings) -> GRPOConfig:
    rewards = {"judge": [RewardSpec(name="judge", model=state.outputs["judge"])],
               "rm": [RewardSpec(name="rm", model=state.outputs["reward_model"])],
               "mix": [RewardSpec(name="judge", model=state.outputs["judge"]),
                       RewardSpec(name="rm", model=state.outputs["reward_model"], weight=0.5)]
               }[s.reward]
    rewards += [RewardSpec(name="format", weight=0.5), RewardSpec(name="repetition", weight=0.25)]
    return GRPOConfig(
        experiment=s.experiment, policy=state.outputs["sft_policy"], preset="tiny",
        prompts=state.outputs["train_queries"], rewards=rewards, max_steps=s.grpo_steps,
        save_steps=max(1, s.grpo_steps // 2), checkpoint_dir=str(state.work / "grpo-ckpt"),
        resume="never", seed=s.seed)


def _record(state: RunState, stage: str, result: StageResult) -> None:
    """Keep what later stages and the report need from a stage's result."""
    def version(name: str) -> str:
        return f"models:/{name}/{result.registered[name]}"

    keep: tuple[str, ...] = ()
    if stage == "sft":
        state.outputs["sft_policy"] = "models:/zhufu-policy@sft"
        keep = ("train_loss",)
    elif stage == "curate":
        state.outputs["pairs"] = result.outputs["pairs"]
        keep = ("pairs", "agreement", "candidates")
    elif stage == "train-rm":
        state.outputs["reward_model"] = version("zhufu-reward")
        keep = tuple(k for k in result.metrics if "acc" in k)
    elif stage == "judge-train":
        state.outputs["judge"] = version("zhufu-judge")
        keep = tuple(k for k in result.metrics if "acc" in k or "fooled" in k)
    elif stage == "grpo":
        state.outputs["grpo_policy"] = "models:/zhufu-policy@grpo"
        keep = ("steps",)
    prefix = {"train-rm": "rm", "judge-train": "judge"}.get(stage, stage)
    state.metrics.update({f"{prefix}/{k}": result.metrics.get(k, float("nan")) for k in keep})


def _compare(state: RunState, s: RunSettings) -> dict[str, Any]:
    from zhufu.pipeline.evaluation.compare import compare

    return compare(state.outputs["sft_policy"], state.outputs["grpo_policy"],
                   prompts=state.outputs["held_out_queries"], max_prompts=s.compare_prompts,
                   judge=state.outputs.get("judge"), reward_model=state.outputs.get(
                       "reward_model"), bootstrap=500, seed=s.seed,
                   samples_per_prompt=s.compare_samples)


#: The loop after the data is prepared: a stage of :data:`~zhufu.pipeline.stages.STAGES`
#: and the config ``zhufu run`` gives it, built from what the earlier stages produced.
STEPS: list[tuple[str, Callable[[RunState, RunSettings], StageConfig]]] = [
    ("sft", _sft), ("curate", _curate), ("train-rm", _train_rm),
    ("judge-train", _train_judge), ("grpo", _grpo),
]


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(metric, SFT, GRPO) rows for the final table."""
    a, b = report["sft"], report["grpo"]
    rows = [("judge overall (1–5)", f"{a['judge_overall']:.2f}", f"{b['judge_overall']:.2f}")]
    rows += [(f"  {k}", f"{a['judge'][k]:.2f}", f"{b['judge'][k]:.2f}") for k in a["judge"]]
    if "rm" in a:
        rows.append(("reward model", f"{a['rm']:.3f}", f"{b['rm']:.3f}"))
    rows.append(("mean length (chars)", f"{a['mean_length']:.1f}", f"{b['mean_length']:.1f}"))
    return rows


def print_summary(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Zhufu run: SFT vs GRPO on held-out queries")
    for col in ("metric", "SFT", "GRPO"):
        table.add_column(col)
    for row in summary_rows(report):
        table.add_row(*row)
    ci = report.get("ci95", {})
    table.add_row("win rate (GRPO over SFT)", "", f"{report['win_rate']:.2f} "
                  f"{_ci(ci.get('win_rate'))}")
    table.add_row("length-controlled win rate", "", f"{report['lc_win_rate']:.2f} "
                  f"{_ci(ci.get('lc_win_rate'))}")
    for key, value in report["stages"].items():
        table.add_row(key, "", f"{value:.3f}" if isinstance(value, float) else str(value))
    table.add_row("wall time (s)", "", f"{report['wall_seconds']:.0f}")
    Console().print(table)


def _ci(bounds: list[float] | None) -> str:
    return f"[{bounds[0]:.2f}, {bounds[1]:.2f}]" if bounds else ""


def run_all(settings: RunSettings | None = None, report_path: str | None = None) -> dict[str, Any]:
    """Run every stage (see module docstring); return and write the report."""
    import mlflow

    from zhufu.pipeline import tracking
    from zhufu.pipeline.evaluation.compare import plot_comparison
    from zhufu.pipeline.models import data_dir, tiny_policy_path, tiny_reward_model_path

    s = settings or RunSettings()
    started = time.perf_counter()
    tracking.configure()
    state = RunState(work=data_dir() / "run")
    state.work.mkdir(parents=True, exist_ok=True)
    tiny_policy_path()
    tiny_reward_model_path()
    with mlflow.start_run(experiment_id=tracking.ensure_experiment(s.experiment),
                          run_name="zhufu-run", tags={"zhufu.stage": "run"}):
        mlflow.log_params({"reward": s.reward, "grpo_steps": s.grpo_steps,
                           "sft_epochs": s.sft_epochs, "judge_rounds": s.judge_rounds})
        print("\n=== zhufu run: data ===", flush=True)
        t0 = time.perf_counter()
        _prepare_data(state, s)
        state.seconds["data"] = time.perf_counter() - t0
        for name, config in STEPS:
            print(f"\n=== zhufu run: {name} ===", flush=True)
            t0 = time.perf_counter()
            _record(state, name, run_stage(STAGES[name], config(state, s)))
            state.seconds[name] = time.perf_counter() - t0
        print("\n=== zhufu run: compare SFT vs GRPO ===", flush=True)
        t0 = time.perf_counter()
        comparison = _compare(state, s)
        state.seconds["compare"] = time.perf_counter() - t0
        report = {"sft": comparison["a"], "grpo": comparison["b"],
                  "win_rate": comparison["win_rate"], "lc_win_rate": comparison["lc_win_rate"],
                  "ci95": comparison["ci95"], "n_prompts": comparison["n"],
                  "examples": comparison["examples"], "stages": state.metrics,
                  "stage_seconds": state.seconds, "outputs": state.outputs,
                  "wall_seconds": time.perf_counter() - started}
        out = Path(report_path) if report_path else state.work / "report.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        png = out.with_suffix(".png")
        plot_comparison(comparison, str(png), labels=("SFT", "GRPO"))
        tracking.log_metrics({"win_rate": report["win_rate"],
                              "lc_win_rate": report["lc_win_rate"],
                              "wall_seconds": report["wall_seconds"]})
        mlflow.log_artifact(str(out))
        tracking.log_png(png)
    print_summary(report)
    print(f"report: {out}  plot: {png}  (browse the runs with `zhufu ui`)")
    return report
