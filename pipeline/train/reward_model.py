"""Train a reward model on preference pairs with TRL's RewardTrainer, and measure it honestly.

What it does:

1. loads the pairs (``cfg.data``: ShareGPT preference JSON, path or ``s3://``; None = the
   starter pairs) and holds out ``cfg.eval_fraction`` of them (seeded shuffle);
2. builds the model: ``base_model: char`` makes a fresh BERT-style encoder whose vocabulary
   is the characters of the training split (see :mod:`.char_encoder`); anything else is a
   model spec (``tiny``, a local dir, ``models:/…``) loaded with a fresh one-output head;
3. trains with ``trl.RewardTrainer`` (Bradley-Terry loss ``-log σ(r_chosen - r_rejected)``),
   optionally through LoRA adapters (merged into the saved model), on every rank of a
   ``torchrun`` launch (DDP); with ``degenerate_negatives`` the training pairs gain extra
   pairs of a chosen text against a degenerate corruption of itself, so the model learns
   that text which is not a greeting ranks below any greeting
   (:func:`degenerate_training_pairs`);
4. scores both sides of every held-out pair and reports the accuracy overall, on pairs of
   near-same length, and by length-difference band — next to two baselines on the same
   held-out pairs: "longer wins" and a character n-gram TF-IDF logistic regression fitted on
   the same training split (:mod:`zhufu.pipeline.evaluation.ngram_baseline`),
   and runs the judge test suite (:func:`suite_figures`): the AUC of good greetings
   against the project's degenerate set and pair accuracy on its principle pairs;
5. logs it to the stage's MLflow run (metrics, a PNG of accuracy by band, the report JSON)
   and returns the trainer; the stage wrapper saves the model and registers it as
   ``cfg.register_as`` on rank 0.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zhufu.pipeline.config import RewardModelConfig
from zhufu.pipeline.errors import DataError
from zhufu.pipeline.results import Registration, StageOutput
from zhufu.pipeline.train.callbacks import fit, mlflow_metrics_callback

STARTER_URI = "zhufu://starter/pairs"
#: Bands of relative length difference |len(c) - len(r)| / max(len) used in the report; the
#: first band is the "near-same length" of :mod:`zhufu.pipeline.evaluation.metrics`.
DELTA_BANDS: tuple[tuple[str, float, float], ...] = (
    ("0-15pct", 0.0, 0.15), ("15-30pct", 0.15, 0.30), ("30-50pct", 0.30, 0.50),
    ("50-100pct", 0.50, 1.01))


def split_pairs(pairs: Sequence[Any], eval_fraction: float, seed: int) -> tuple[list, list]:
    """(train, held-out): a seeded shuffle, at least one pair on each side.

    >>> tr, ev = split_pairs(list(range(10)), 0.2, seed=0)
    >>> len(tr), len(ev), sorted(tr + ev) == list(range(10))
    (8, 2, True)
    """
    if len(pairs) < 2:
        raise DataError("preference pairs", None, None, f"need at least 2 to hold one out, "
                        f"got {len(pairs)}")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(pairs) - 1, max(1, round(eval_fraction * len(pairs))))
    return [pairs[i] for i in order[n_eval:]], [pairs[i] for i in order[:n_eval]]


def delta_band(chosen: str, rejected: str) -> str:
    """The :data:`DELTA_BANDS` name of a pair's relative length difference."""
    longer = max(len(chosen), len(rejected)) or 1
    rel = abs(len(chosen) - len(rejected)) / longer
    for name, lo, hi in DELTA_BANDS:
        if (lo == 0.0 and rel <= hi) or lo < rel <= hi:
            return name
    return DELTA_BANDS[-1][0]


def accuracy_report(pairs: Sequence[Any], chosen_scores: Sequence[float],
                    rejected_scores: Sequence[float]) -> dict[str, float]:
    """``acc`` overall, ``acc_near`` on near-same-length pairs, ``acc_band/<band>`` and the
    counts ``n``, ``n_near``, ``n_band/<band>`` (ties count one half)."""
    from zhufu.pipeline.evaluation.metrics import near_same_length, pair_accuracy

    near = near_same_length([len(p.chosen) for p in pairs], [len(p.rejected) for p in pairs])
    out: dict[str, float] = {"n": float(len(pairs)), "acc": pair_accuracy(chosen_scores,
                                                                          rejected_scores)}
    idx = [i for i, m in enumerate(near) if m]
    out["n_near"] = float(len(idx))
    out["acc_near"] = pair_accuracy([chosen_scores[i] for i in idx],
                                    [rejected_scores[i] for i in idx])
    for name, _, _ in DELTA_BANDS:
        idx = [i for i, p in enumerate(pairs) if delta_band(p.chosen, p.rejected) == name]
        out[f"n_band/{name}"] = float(len(idx))
        out[f"acc_band/{name}"] = pair_accuracy([chosen_scores[i] for i in idx],
                                                [rejected_scores[i] for i in idx])
    return out


def baselines(train: Sequence[Any], held_out: Sequence[Any],
              seed: int) -> dict[str, dict[str, float]]:
    """Accuracy reports of "longer wins" and the n-gram LR (fitted on ``train``)."""
    from zhufu.pipeline.evaluation.ngram_baseline import fit_ngram_baseline

    longer = accuracy_report(held_out, [len(p.chosen) for p in held_out],
                             [len(p.rejected) for p in held_out])
    ngram = fit_ngram_baseline([p.chosen for p in train], [p.rejected for p in train], seed=seed)
    sc = ngram.score([p.chosen for p in held_out]).tolist()
    sr = ngram.score([p.rejected for p in held_out]).tolist()
    return {"longer": longer, "ngram": accuracy_report(held_out, sc, sr)}


def degenerate_training_pairs(pairs: Sequence[Any], per_pair: float, seed: int) -> list[Any]:
    """``round(per_pair × len(pairs))`` extra pairs: a training pair's chosen text against a
    degenerate corruption (every kind of :data:`zhufu.pipeline.judge.degenerate.KINDS` in
    turn). Every corruption is of the chosen text itself, except that every other
    ``written_twice`` one doubles the pair's *rejected* greeting instead: the paper's rejected
    texts are about half as long as the chosen ones, so that doubled text is about as long as
    the greeting it loses to, and length alone cannot win the pair (a doubled chosen text
    always has the length a model trained on those pairs prefers).

    >>> from zhufu.pipeline.data import PreferencePair
    >>> extra = degenerate_training_pairs([PreferencePair("生日祝福", "生日快乐！", "快乐")], 2, 0)
    >>> [(p.chosen, p.rejected != p.chosen) for p in extra]
    [('生日快乐！', True), ('生日快乐！', True)]
    """
    from zhufu.pipeline.data import PreferencePair
    from zhufu.pipeline.judge.degenerate import degenerate_pairs, written_twice

    count = round(per_pair * len(pairs))
    rows = degenerate_pairs([p.query for p in pairs], [p.chosen for p in pairs], count, seed)
    rejected = {(p.query, p.chosen): p.rejected for p in pairs}
    rng = random.Random(seed)
    out, doubled = [], 0
    for q, chosen, bad, kind in rows:
        if kind == "written_twice":
            if doubled % 2 and rejected[(q, chosen)].strip():
                bad = written_twice(q, rejected[(q, chosen)], rng)
            doubled += 1
        if bad != chosen:
            out.append(PreferencePair(q, chosen, bad))
    return out


def suite_figures(model: Any, tokenizer: Any, held_out: Sequence[Any],
                  max_length: int) -> dict[str, float]:
    """The judge test suite (:mod:`zhufu.pipeline.evaluation.judge_suite`) for the model:
    AUC of good greetings (the project's and the held-out chosen ones) against the
    degenerate set, overall and per split, and pair accuracy on the principle pairs."""
    from zhufu.pipeline.evaluation.judge_suite import run_suite
    from zhufu.pipeline.rewards.rm import score_with

    def scorer(texts: Sequence[tuple[str, str]]) -> tuple[list[float], None]:
        return [float(x) for x in score_with(model, tokenizer, [q for q, _ in texts],
                                             [t for _, t in texts],
                                             max_length=max_length)], None

    suite = run_suite(scorer, [(p.query, p.chosen) for p in held_out])
    deg, pairs = suite["degenerate"], suite["pairs"]
    out = {"suite/degenerate_auc": deg["auc"]}
    out.update({f"suite/degenerate_auc_{k}": v["auc"] for k, v in deg["by_split"].items()})
    out.update({f"suite/pair_acc_{k}": v["pair_acc"] for k, v in pairs.items()
                if isinstance(v, dict) and "pair_acc" in v})
    return out


def pair_dataset(tokenizer: Any, pairs: Sequence[Any], max_length: int) -> Any:
    """A ``datasets.Dataset`` of pre-tokenised ``chosen_ids`` / ``rejected_ids`` (TRL's
    processed format), encoded by :func:`zhufu.pipeline.rewards.rm.encode`."""
    from datasets import Dataset

    from zhufu.pipeline.rewards.rm import encode

    queries = [p.query for p in pairs]
    chosen = encode(tokenizer, queries, [p.chosen for p in pairs], max_length)["input_ids"]
    rejected = encode(tokenizer, queries, [p.rejected for p in pairs], max_length)["input_ids"]
    return Dataset.from_dict({"chosen_ids": chosen, "rejected_ids": rejected})


def build_model(cfg: RewardModelConfig, train: Sequence[Any]) -> tuple[Any, Any]:
    """(sequence-classification model with one output, tokenizer) to train."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from zhufu.pipeline.models import load_tokenizer, resolve_model

    torch.manual_seed(cfg.seed)
    if cfg.base_model == "char":
        from zhufu.pipeline.train.char_encoder import build_char_encoder

        texts = [t for p in train for t in (p.query, p.chosen, p.rejected)]
        return build_char_encoder(texts, cfg.char_encoder, max_length=cfg.max_length)
    base = resolve_model(cfg.base_model)
    tokenizer = load_tokenizer(str(base), padding_side="right")
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1,
                                                               dtype=torch.float32)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def train(cfg: RewardModelConfig, model: Any, tokenizer: Any, train_pairs: Sequence[Any],
          callbacks: Sequence[Any] = ()) -> tuple[Any, dict[str, float]]:
    """Run RewardTrainer; return the trainer (``trainer.model`` is the trained model, with
    its LoRA adapters if any) and timing figures."""
    import torch
    from trl import RewardConfig, RewardTrainer

    dataset = pair_dataset(tokenizer, train_pairs, cfg.max_length)
    on_gpu = torch.cuda.is_available()
    with tempfile.TemporaryDirectory(prefix="zhufu-rm-ckpt-") as ckpt:
        args = RewardConfig(
            output_dir=ckpt, max_steps=cfg.max_steps, num_train_epochs=cfg.num_epochs,
            learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.scheduler,
            warmup_steps=cfg.warmup_ratio, per_device_train_batch_size=cfg.batch_size,
            max_length=None,  # pairs are truncated by encode(), never dropped
            seed=cfg.seed, bf16=on_gpu and torch.cuda.is_bf16_supported(), use_cpu=not on_gpu,
            save_strategy="no", report_to="none", logging_steps=10, logging_first_step=True,
            dataloader_num_workers=0,
        )
        trainer = RewardTrainer(model=model, args=args, train_dataset=dataset,
                                processing_class=tokenizer,
                                peft_config=cfg.lora.to_peft("SEQ_CLS") if cfg.lora else None,
                                callbacks=list(callbacks))
        steps, loss, seconds = fit(trainer, "train-rm")
    seen = min(steps * cfg.batch_size, math.ceil(cfg.num_epochs * len(dataset))) \
        if cfg.max_steps < 0 else steps * cfg.batch_size
    return trainer, {"train_loss": loss, "steps": float(steps), "train_seconds": seconds,
                     "pairs_per_s": seen / seconds if seconds > 0 else 0.0}


def plot_bands(reports: dict[str, dict[str, float]], path: Path) -> Path:
    """Grouped bars: accuracy per length-difference band for each scorer; n under each band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name, _, _ in DELTA_BANDS]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(reports))
    for k, (label, rep) in enumerate(reports.items()):
        xs = [i + k * width for i in range(len(names))]
        ys = [rep.get(f"acc_band/{b}", float("nan")) for b in names]
        ax.bar(xs, ys, width=width, label=f"{label} (all {rep['acc']:.3f})")
    first = next(iter(reports.values()))
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))],
                  [f"{b}\nn={int(first[f'n_band/{b}'])}" for b in names])
    ax.set_xlabel("|len(chosen) - len(rejected)| / longer (held-out pairs)")
    ax.set_ylabel("pair accuracy")
    ax.set_ylim(0, 1.05)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Reward model vs baselines by length difference")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


#: Metrics of the result (the MLflow run has every band as well).
SUMMARY = ("rm/acc", "rm/acc_near", "ngram/acc", "ngram/acc_near", "longer/acc",
           "longer/acc_near", "rm/n", "rm/n_near", "train_loss", "train_seconds",
           "suite/degenerate_auc", "suite/degenerate_auc_final", "suite/pair_acc_held_out")


def train_rm(cfg: RewardModelConfig) -> StageOutput:
    """Train and evaluate the reward model (see module docstring)."""
    from zhufu.pipeline import tracking
    from zhufu.pipeline.data import load_pairs
    from zhufu.pipeline.rewards.rm import score_with

    pairs = load_pairs(cfg.data)
    train_pairs, held_out = split_pairs(pairs, cfg.eval_fraction, cfg.seed)
    extra = degenerate_training_pairs(train_pairs, cfg.degenerate_negatives, cfg.seed)
    tracking.log_dataset(cfg.data or STARTER_URI, "preference-pairs", "training")
    model, tokenizer = build_model(cfg, train_pairs + extra)
    n_params = sum(p.numel() for p in model.parameters())
    tracking.log_metrics({"data/train_pairs": len(train_pairs),
                          "data/degenerate_pairs": len(extra),
                          "data/eval_pairs": len(held_out), "model/params": n_params})
    trainer, timing = train(cfg, model, tokenizer, train_pairs + extra,
                            [mlflow_metrics_callback()])
    model = trainer.model
    model.config.zhufu_max_length = cfg.max_length
    model.eval()
    queries = [p.query for p in held_out]
    sc = score_with(model, tokenizer, queries, [p.chosen for p in held_out],
                    max_length=cfg.max_length)
    sr = score_with(model, tokenizer, queries, [p.rejected for p in held_out],
                    max_length=cfg.max_length)
    reports = {"rm": accuracy_report(held_out, sc, sr), **baselines(train_pairs, held_out,
                                                                     cfg.seed)}
    metrics = {**timing, "model_params": float(n_params),
               **suite_figures(model, tokenizer, held_out, cfg.max_length)}
    for scorer, rep in reports.items():
        metrics.update({f"{scorer}/{k}": v for k, v in rep.items()
                        if not (isinstance(v, float) and math.isnan(v))})
    with tempfile.TemporaryDirectory(prefix="zhufu-rm-report-") as tmp:
        tracking.log_png(plot_bands(reports, Path(tmp) / "rm_accuracy_by_length.png"))
    tracking.log_dict({"reports": reports, "timing": timing}, "rm_report.json")
    settings = json.dumps({"max_length": cfg.max_length, "base_model": cfg.base_model})

    def write_settings(folder: Path) -> None:
        (folder / "zhufu_rm.json").write_text(settings, encoding="utf-8")

    return StageOutput(metrics=metrics, summary=SUMMARY, trainer=trainer,
                       write_model=write_settings,
                       register=Registration(cfg.register_as, alias=cfg.alias))
