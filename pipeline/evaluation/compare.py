"""Compare two policies on held-out prompts: judge dimensions, RM scores, length, win rates.

Both policies answer every prompt once (same sampling settings and seed). The judge scores
each greeting on the five dimensions; policy B wins a prompt when its overall judge score is
higher (a tie counts one half). The length-controlled win rate follows AlpacaEval's LC idea:
regress the preference on the (normalised, tanh-squashed) length difference with a logistic
model and report the predicted win rate at zero length difference — so a policy that only
learned to write longer does not win. 95 % intervals come from a bootstrap over prompts.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zhufu.pipeline.errors import DataError
from zhufu.pipeline.judge.principles import DIMENSION_KEYS


@dataclass
class Side:
    """One policy's answers and their scores."""

    spec: str
    responses: list[str]
    judge_overall: list[float]
    judge_dims: dict[str, list[float]]
    rm: list[float] | None = None

    def summary(self) -> dict[str, object]:
        lengths = [len(r) for r in self.responses]
        out: dict[str, object] = {
            "spec": self.spec,
            "judge_overall": float(np.mean(self.judge_overall)),
            "judge": {k: float(np.mean(v)) for k, v in self.judge_dims.items()},
            "mean_length": float(np.mean(lengths)),
        }
        if self.rm is not None:
            out["rm"] = float(np.mean(self.rm))
        return out


def preferences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """1 where B scores higher, 0 where A does, 0.5 on ties.

    >>> preferences([3, 4, 2], [4, 4, 1]).tolist()
    [1.0, 0.5, 0.0]
    """
    a_, b_ = np.asarray(a, float), np.asarray(b, float)
    return np.where(b_ > a_, 1.0, np.where(b_ < a_, 0.0, 0.5))


def lc_win_rate(prefs: np.ndarray, length_diff: np.ndarray) -> float:
    """Win rate at zero length difference from a logistic fit of the preference on
    ``tanh(Δlen / std)``; ties enter as half a win and half a loss (sample weights)."""
    from sklearn.linear_model import LogisticRegression

    if np.all(prefs == prefs[0]) and prefs[0] in (0.0, 1.0):
        return float(prefs[0])
    scale = float(np.std(length_diff)) or 1.0
    x = np.tanh(length_diff / scale).reshape(-1, 1)
    xs = np.vstack([x, x])
    ys = np.concatenate([np.ones(len(prefs)), np.zeros(len(prefs))])
    ws = np.concatenate([prefs, 1.0 - prefs])
    keep = ws > 0
    model = LogisticRegression(C=10.0)
    model.fit(xs[keep], ys[keep], sample_weight=ws[keep])
    return float(1.0 / (1.0 + math.exp(-model.intercept_[0])))


def bootstrap_ci(prefs: np.ndarray, length_diff: np.ndarray, rounds: int, seed: int = 0,
                 groups: np.ndarray | None = None) -> dict[str, list[float]]:
    """95 % percentile intervals for the win rate and the LC win rate.

    With ``groups`` (the prompt of each comparison) whole prompts are resampled, so several
    samples of one prompt do not count as independent evidence.
    """
    if rounds <= 0 or len(prefs) < 2:
        return {}
    rng = np.random.default_rng(seed)
    groups = np.arange(len(prefs)) if groups is None else np.asarray(groups)
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    wins, lcs = [], []
    for _ in range(rounds):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        wins.append(float(prefs[idx].mean()))
        lcs.append(lc_win_rate(prefs[idx], length_diff[idx]))
    q = [2.5, 97.5]
    return {"win_rate": np.percentile(wins, q).tolist(),
            "lc_win_rate": np.percentile(lcs, q).tolist()}


async def _generate(spec: str, messages: Sequence[list[dict[str, str]]], max_tokens: int,
                    seed: int) -> list[str]:
    """One sampled answer per prompt from a policy (local dir, ``tiny`` or MLflow URI)."""
    import torch

    from zhufu.pipeline.llm.base import ChatRequest, LLMError
    from zhufu.pipeline.llm.hf_backend import TransformersBackend
    from zhufu.pipeline.models import resolve_model

    torch.manual_seed(seed)
    backend = TransformersBackend(resolve_model(spec), batch_size=16, temperature=0.7,
                                  max_tokens=max_tokens)
    try:
        replies = await backend.chat_many([ChatRequest(messages=list(m)) for m in messages])
    finally:
        await backend.aclose()
    return ["" if isinstance(r, LLMError) else r.text.strip() for r in replies]


async def _score(spec: str, queries: Sequence[str], responses: Sequence[str],
                 judge_spec: str | None, rm_spec: str | None) -> Side:
    from zhufu.pipeline.judge import load_judge

    judge = load_judge(judge_spec)
    try:
        results = await judge.score_many(list(zip(queries, responses, strict=True)))
    finally:
        await judge.aclose()
    side = Side(spec=spec, responses=list(responses),
                judge_overall=[r.overall for r in results],
                judge_dims={k: [r.scores.get(k, 3.0) for r in results] for k in DIMENSION_KEYS})
    if rm_spec:
        from zhufu.pipeline.rewards.rm import score_texts

        side.rm = score_texts(rm_spec, list(queries), list(responses))
    return side


def compare(a: str, b: str, prompts: str | None = None, max_prompts: int = 64,
            judge: str | None = None, reward_model: str | None = None, bootstrap: int = 1000,
            max_tokens: int = 64, seed: int = 0, samples_per_prompt: int = 1
            ) -> dict[str, object]:
    """Generate ``samples_per_prompt`` answers from policies ``a`` and ``b`` for each held-out
    prompt and compare them pairwise (sample i of A against sample i of B)."""
    from zhufu.pipeline.data import load_prompts

    rows = load_prompts(prompts)[:max_prompts]
    if not rows:
        raise DataError(prompts or "starter prompts", None, None, "no prompts to compare on")
    queries = [p.query for p in rows for _ in range(samples_per_prompt)]
    messages = [p.messages for p in rows for _ in range(samples_per_prompt)]
    groups = np.repeat(np.arange(len(rows)), samples_per_prompt)

    async def run() -> tuple[Side, Side]:
        outs_a = await _generate(a, messages, max_tokens, seed)
        outs_b = await _generate(b, messages, max_tokens, seed)
        return (await _score(a, queries, outs_a, judge, reward_model),
                await _score(b, queries, outs_b, judge, reward_model))

    side_a, side_b = asyncio.run(run())
    prefs = preferences(side_a.judge_overall, side_b.judge_overall)
    diff = np.array([len(y) - len(x) for x, y in zip(side_a.responses, side_b.responses,
                                                        strict=True)], float)
    report: dict[str, object] = {
        "n": len(rows), "samples_per_prompt": samples_per_prompt,
        "a": side_a.summary(), "b": side_b.summary(),
        "win_rate": float(prefs.mean()), "lc_win_rate": lc_win_rate(prefs, diff),
        "ci95": bootstrap_ci(prefs, diff, bootstrap, seed, groups),
        "examples": [{"query": q, "a": x, "b": y} for q, x, y in
                     zip(queries[::samples_per_prompt][:5], side_a.responses[::samples_per_prompt],
                         side_b.responses[::samples_per_prompt], strict=False)],
    }
    if side_a.rm is not None and side_b.rm is not None:
        report["rm_win_rate"] = float(preferences(side_a.rm, side_b.rm).mean())
    return report


def plot_comparison(report: dict[str, object], path: str, labels: tuple[str, str] = ("A", "B")
                    ) -> None:
    """Bar chart of the five judge dimensions (and mean length) for both policies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = report["a"], report["b"]
    keys = list(DIMENSION_KEYS)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [4, 1]})
    x = np.arange(len(keys))
    ax1.bar(x - 0.2, [a["judge"][k] for k in keys], 0.4, label=labels[0])
    ax1.bar(x + 0.2, [b["judge"][k] for k in keys], 0.4, label=labels[1])
    ax1.set_xticks(x, [k.replace("_", "\n") for k in keys], fontsize=8)
    ax1.set_ylim(1, 5)
    ax1.set_ylabel("judge score (1–5)")
    ax1.legend()
    ax1.set_title(f"win rate {report['win_rate']:.2f} · length-controlled "
                  f"{report['lc_win_rate']:.2f} · n={report['n']}")
    ax2.bar(labels, [a["mean_length"], b["mean_length"]], color=["C0", "C1"])
    ax2.set_title("mean length (chars)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
