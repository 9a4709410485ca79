"""The judge-train stage around :func:`~zhufu.pipeline.judge.training.train_loop`: MLflow
logging per round (metrics at step = round, rule diffs as JSON, a PNG of dev accuracy and
fooled rate per round) and the held-out test report with its baselines; the stage wrapper
saves the best state and registers it. :func:`run_ablation` (no adversarial rounds / no
reflector / full, ``zhufu judge ablation``) shares one feature cache between its three runs.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from zhufu.pipeline import aio
from zhufu.pipeline.config import JudgeTrainConfig
from zhufu.pipeline.judge.judge import STATE_FILE, Judge, JudgeState
from zhufu.pipeline.judge.registry import ARTIFACT_PATH
from zhufu.pipeline.judge.rounds import RoundLog, TrainingData, accuracy_report, evaluate_split
from zhufu.pipeline.results import Registration, StageOutput


def baselines(data: TrainingData) -> dict[str, float]:
    """Length rule and character n-gram logistic regression, fitted on train, on test."""
    from zhufu.pipeline.evaluation.metrics import best_length_rule

    train, test = data.train_rows, data.test_rows
    if not test or len({r.label for r in train}) < 2:
        return {}
    lengths = [e.features.length for e in data.train]
    rule = best_length_rule(lengths, [r.label for r in train])
    test_len = [e.features.length for e in data.test]
    labels = [r.label for r in test]
    out = {f"length_{k}": v for k, v in
           accuracy_report(labels, rule.predict(test_len), test_len).items()}
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    x = vec.fit_transform([r.response for r in train])
    model = LogisticRegression(C=10.0, max_iter=2000).fit(x, [r.label for r in train])
    pred = [int(p) for p in model.predict(vec.transform([r.response for r in test]))]
    out.update({f"ngram_{k}": v for k, v in accuracy_report(labels, pred, test_len).items()})
    return out


def _plot(history: list[RoundLog], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    rounds = [h.round for h in history]
    ax.plot(rounds, [h.dev["acc"] for h in history], marker="o", label="dev accuracy")
    if "acc_30_50" in history[0].dev:
        ax.plot(rounds, [h.dev.get("acc_30_50", float("nan")) for h in history], marker=".",
                label="dev accuracy, 30–50 chars")
    ax.plot(rounds, [h.fooled_rate for h in history], marker="x", label="fooled rate")
    ax.set_xlabel("round")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _check_identical(state: JudgeState, data: TrainingData, n: int = 12) -> float:
    """How many of ``n`` test/dev greetings score differently through :class:`Judge` (the
    production path) than in training (expected 0; the judge's output rounds the overall
    score to 4 decimals)."""
    from zhufu.pipeline.llm.offline import OfflineBackend

    sample = (data.test or data.dev)[:n]
    if not sample:
        return 0.0
    judge = Judge(OfflineBackend(), state)
    results = aio.run(judge.score_many([(e.query, e.response) for e in sample]))
    from zhufu.pipeline.judge.optimiser import Scorer

    scorer = Scorer(state.weights, sample)
    over, pred = scorer.overall(), scorer.predict()
    return float(sum(int(r.label != int(p)) + int(abs(r.overall - o) > 1e-4)
                     for r, p, o in zip(results, pred, over, strict=True)))


def train_and_evaluate(cfg: JudgeTrainConfig, data: TrainingData, title: str
                       ) -> tuple[JudgeState, dict[str, float]]:
    """Train (logging every round to the active MLflow run) and evaluate on the test split:
    the best round's judge state (with its test figures in ``metadata``) and the metrics."""
    from zhufu.pipeline import tracking
    from zhufu.pipeline.judge.training import train_loop
    from zhufu.pipeline.llm import make_backend

    backend = make_backend(cfg.llm)
    tracking.log_metrics({"train_rows": len(data.train), "dev_rows": len(data.dev),
                          "test_rows": len(data.test)})

    def on_round(entry: RoundLog, state: JudgeState) -> None:
        tracking.log_metrics(entry.metrics(), step=entry.round)
        tracking.log_dict(asdict(entry), f"rounds/round_{entry.round:02d}.json")

    async def go() -> Any:
        try:
            return await train_loop(cfg, data, backend, on_round)
        finally:
            await backend.aclose()

    outcome = aio.run(go())
    with tempfile.TemporaryDirectory() as tmp:
        plot = Path(tmp) / "judge_rounds.png"
        _plot(outcome.rounds, plot, title)
        tracking.log_png(plot)
    metrics: dict[str, float] = {
        "best_round": float(outcome.best_round),
        "dev_acc_initial": outcome.rounds[0].dev["acc"],
        "dev_acc_best": outcome.rounds[outcome.best_round].dev["acc"],
        "dev_acc_final": outcome.rounds[-1].dev["acc"],
        "train_rows": float(len(data.train)), "dev_rows": float(len(data.dev)),
        "test_rows": float(len(data.test)), **backend.stats.as_metrics("llm_"),
        **{f"failures_{k}": float(v) for k, v in outcome.failures.items()}}
    fooled = [h.fooled_rate for h in outcome.rounds[1:] if h.fooled_rate == h.fooled_rate]
    if fooled:
        metrics["fooled_rate_first"], metrics["fooled_rate_last"] = fooled[0], fooled[-1]
    if data.with_features:
        metrics.update({f"test_{k}": v for k, v in
                        evaluate_split(outcome.state.weights, data.test).items()
                        if data.test})
        metrics.update({f"baseline_{k}": v for k, v in baselines(data).items()})
        metrics["judge_path_mismatches"] = _check_identical(outcome.state, data)
    outcome.state.metadata.update({"test": {k: v for k, v in metrics.items()
                                            if k.startswith(("test_", "baseline_"))}})
    return outcome.state, metrics


def judge_train(cfg: JudgeTrainConfig) -> StageOutput:
    """The judge-train stage: load the data, train, evaluate; the wrapper saves the best
    judge state (``judge.json``) and registers it (``zhufu-judge``)."""
    from zhufu.pipeline.judge.rounds import load_training_data

    state, metrics = train_and_evaluate(cfg, load_training_data(cfg), "judge training")
    return StageOutput(
        metrics=metrics, write_model=lambda folder: state.save(folder / STATE_FILE),
        register=Registration(cfg.register_as, artifact_path=ARTIFACT_PATH, tags={
            "zhufu.kind": "judge", "best_round": str(int(metrics["best_round"])),
            "dev_acc": f"{metrics['dev_acc_best']:.4f}"}))


VARIANTS: dict[str, dict[str, bool]] = {
    "no-adversarial": {"adversarial": False, "reflector": True},
    "no-reflector": {"adversarial": True, "reflector": False},
    "full": {"adversarial": True, "reflector": True},
}


def run_ablation(cfg: JudgeTrainConfig, data: TrainingData) -> dict[str, dict[str, float]]:
    """The three variants on the same splits: one MLflow run each (metrics and the judge
    state as an artifact), nothing registered. Returns each variant's metrics."""
    from zhufu.pipeline import tracking

    out = {}
    for name, flags in VARIANTS.items():
        variant = cfg.model_copy(update=flags)
        with tracking.stage_run("judge-train", variant, run_name=f"judge-ablation-{name}"), \
                tempfile.TemporaryDirectory() as tmp:
            state, metrics = train_and_evaluate(variant, data, f"judge ablation: {name}")
            tracking.log_metrics(metrics)
            tracking.log_artifact(state.save(Path(tmp) / STATE_FILE), ARTIFACT_PATH)
        out[name] = metrics
    return out


def ablation_table(results: dict[str, dict[str, float]]) -> str:
    """A Markdown table of the ablation (dev accuracy initial → best, test accuracy)."""
    lines = ["| variant | dev acc (round 0) | dev acc (best) | best round | test acc | "
             "test acc 30–50 |", "|---|---|---|---|---|---|"]
    for name, m in results.items():
        lines.append(f"| {name} | {m['dev_acc_initial']:.4f} | {m['dev_acc_best']:.4f} | "
                     f"{int(m['best_round'])} | {m.get('test_acc', float('nan')):.4f} | "
                     f"{m.get('test_acc_30_50', float('nan')):.4f} |")
    return "\n".join(lines)
