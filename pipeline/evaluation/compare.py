"""Compare policies on held-out prompts: judge dimensions, RM scores, length, readable share,
win rates.

Every policy answers every prompt the same number of times (same sampling settings and
seed). The judge scores each greeting on the five dimensions; every policy is compared with
every later one (the first is the baseline) answer by answer: it wins when its overall judge
score is higher (a tie counts one half). The share of answers the shared readability check accepts
(:mod:`zhufu.pipeline.evaluation.readable`) is reported per policy as the reward-hacking
check: a judge can be fooled, a reader is not.

The length-controlled win rate follows AlpacaEval's LC idea: regress the preference on the
(normalised, tanh-squashed) length difference with a logistic model and report the predicted
win rate at zero length difference — so a policy that only learned to write longer does not
win. 95 % intervals come from a bootstrap over prompts.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from zhufu.pipeline.errors import DataError
from zhufu.pipeline.judge.principles import DIMENSION_KEYS


@dataclass
class Side:
    """One policy's answers and their scores."""

    spec: str
    queries: list[str]
    responses: list[str]
    judge_overall: list[float]
    judge_dims: dict[str, list[float]]
    rm: list[float] | None = None

    def summary(self) -> dict[str, object]:
        """Mean scores, mean length and the readable share (the reward-hacking check)."""
        from zhufu.pipeline.evaluation.readable import readability

        verdicts = [readability(t, q) for q, t in zip(self.queries, self.responses, strict=True)]
        failed = Counter(rule for v in verdicts for rule in v.failed)
        out: dict[str, object] = {
            "spec": self.spec,
            "judge_overall": float(np.mean(self.judge_overall)),
            "judge": {k: float(np.mean(v)) for k, v in self.judge_dims.items()},
            "mean_length": float(np.mean([len(r) for r in self.responses])),
            "readable_share": sum(v.ok for v in verdicts) / len(verdicts),
            "unreadable_rules": dict(sorted(failed.items())),
            "samples": len(self.responses),
        }
        if self.rm is not None:
            out["rm"] = float(np.mean(self.rm))
        return out

    def samples(self, name: str) -> list[dict[str, object]]:
        """Every answer as ``{query, policy, text, score, length}`` (score: judge overall)."""
        return [{"query": q, "policy": name, "text": t, "score": float(x), "length": len(t)}
                for q, t, x in zip(self.queries, self.responses, self.judge_overall,
                                   strict=True)]


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


async def _score(spec: str, queries: Sequence[str], responses: Sequence[str],
                 judge_spec: str | None, rm_spec: str | None) -> Side:
    from zhufu.pipeline.judge import load_judge

    judge = load_judge(judge_spec)
    try:
        results = await judge.score_many(list(zip(queries, responses, strict=True)))
    finally:
        await judge.aclose()
    side = Side(spec=spec, queries=list(queries), responses=list(responses),
                judge_overall=[r.overall for r in results],
                judge_dims={k: [r.scores.get(k, 3.0) for r in results] for k in DIMENSION_KEYS})
    if rm_spec:
        from zhufu.pipeline.rewards.rm import score_texts

        side.rm = score_texts(rm_spec, list(queries), list(responses))
    return side


def pairwise(a: Side, b: Side, groups: np.ndarray, bootstrap: int, seed: int
             ) -> dict[str, object]:
    """B against A, answer i against answer i: win rate, LC win rate, their 95 % intervals
    (prompts resampled whole) and, with RM scores, the RM's win rate."""
    prefs = preferences(a.judge_overall, b.judge_overall)
    diff = np.array([len(y) - len(x) for x, y in zip(a.responses, b.responses, strict=True)],
                    float)
    out: dict[str, object] = {"win_rate": float(prefs.mean()),
                              "lc_win_rate": lc_win_rate(prefs, diff),
                              "ci95": bootstrap_ci(prefs, diff, bootstrap, seed, groups)}
    if a.rm is not None and b.rm is not None:
        out["rm_win_rate"] = float(preferences(a.rm, b.rm).mean())
    return out


def compare_policies(policies: Mapping[str, str], prompts: str | None = None,
                     max_prompts: int = 64, judge: str | None = None,
                     reward_model: str | None = None, bootstrap: int = 1000,
                     max_tokens: int = 64, seed: int = 0, samples_per_prompt: int = 1
                     ) -> dict[str, object]:
    """Generate ``samples_per_prompt`` answers from each policy (name → spec, the first is
    the baseline) for each held-out prompt, score them, and compare every policy with every
    later one (``a`` before ``b`` in ``policies``' order: the baseline against each, then
    the others among themselves). The report::

        {"n_prompts", "samples_per_prompt",
         "policies": {name: {spec, judge_overall, judge: {dimension: mean}, mean_length,
                             readable_share, unreadable_rules, samples, [rm]}},
         "pairwise": [{"a": earlier, "b": later, win_rate, lc_win_rate,
                       "ci95": {"win_rate": [lo, hi], "lc_win_rate": [lo, hi]}, [rm_win_rate]}],
         "samples": [{query, policy, text, score, length}]}
    """
    from zhufu.pipeline.data import load_prompts
    from zhufu.pipeline.evaluation.sampling import sample_messages

    if len(policies) < 2:
        raise ValueError(f"compare: need at least two policies, got {list(policies)}")
    rows = load_prompts(prompts)[:max_prompts]
    if not rows:
        raise DataError(prompts or "starter prompts", None, None, "no prompts to compare on")
    queries = [p.query for p in rows for _ in range(samples_per_prompt)]
    messages = [p.messages for p in rows for _ in range(samples_per_prompt)]
    groups = np.repeat(np.arange(len(rows)), samples_per_prompt)

    async def run() -> dict[str, Side]:
        answers = {name: await sample_messages(spec, messages, max_tokens, seed)
                   for name, spec in policies.items()}
        return {name: await _score(policies[name], queries, texts, judge, reward_model)
                for name, texts in answers.items()}

    sides = asyncio.run(run())
    return {
        "n_prompts": len(rows), "samples_per_prompt": samples_per_prompt,
        "policies": {name: side.summary() for name, side in sides.items()},
        "pairwise": [{"a": a, "b": b, **pairwise(sides[a], sides[b], groups, bootstrap, seed)}
                     for a, b in itertools.combinations(sides, 2)],
        "samples": [x for name, side in sides.items() for x in side.samples(name)],
    }


def plot_comparison(report: dict[str, object], path: str) -> None:
    """Bar chart of the five judge dimensions (and mean length) for every policy, titled with
    the first pairwise comparison's win rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies: dict[str, dict] = report["policies"]  # type: ignore[assignment]
    keys = list(DIMENSION_KEYS)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [4, 1]})
    x = np.arange(len(keys))
    width = 0.8 / len(policies)
    for i, (name, summary) in enumerate(policies.items()):
        ax1.bar(x + (i - (len(policies) - 1) / 2) * width, [summary["judge"][k] for k in keys],
                width, label=f"{name} (readable {summary['readable_share']:.0%})")
    ax1.set_xticks(x, [k.replace("_", "\n") for k in keys], fontsize=8)
    ax1.set_ylim(1, 5)
    ax1.set_ylabel("judge score (1–5)")
    ax1.legend()
    first = report["pairwise"][0]  # type: ignore[index]
    ax1.set_title(f"{first['b']} vs {first['a']}: win rate {first['win_rate']:.2f} · "
                  f"length-controlled {first['lc_win_rate']:.2f} · n={report['n_prompts']}")
    ax2.bar(list(policies), [p["mean_length"] for p in policies.values()],
            color=[f"C{i}" for i in range(len(policies))])
    ax2.set_title("mean length (chars)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
