"""From curated verdicts to preference pairs, and their agreement with labels.

Per query, among the candidates that got a final verdict: ``chosen`` is the best (``good``
before ``bad``, then the higher score), ``rejected`` the worst; when best and worst rank the
same, the query is a tie and gives no pair. Among candidates that rank equal, the first in
candidate order wins, so the output does not depend on the order calls finished in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from zhufu.pipeline.data.rows import LabelledExample, PreferencePair


def rank_key(final: dict[str, Any]) -> tuple[int, float]:
    """Sort key of a final verdict: ``(1 if good else 0, score)``; bigger is better.

    >>> rank_key({"verdict": "good", "score": 6}) > rank_key({"verdict": "bad", "score": 9})
    True
    """
    return (1 if final["verdict"] == "good" else 0, float(final["score"]))


@dataclass
class PairStats:
    queries: int = 0
    pairs: int = 0
    ties: int = 0
    too_few: int = 0  # fewer than two judged candidates
    margins: list[float] = field(default_factory=list)


def form_pairs(traces: Iterable[dict[str, Any]]) -> tuple[list[PreferencePair], PairStats]:
    """One pair per query with a best and a worst that differ; traces in candidate order."""
    by_query: dict[str, list[dict[str, Any]]] = {}
    for trace in traces:
        by_query.setdefault(trace["query"], []).append(trace)
    stats = PairStats(queries=len(by_query))
    pairs: list[PreferencePair] = []
    for query, group in by_query.items():
        judged = [t for t in group if t.get("final")]
        if len(judged) < 2:
            stats.too_few += 1
            continue
        best = judged[0]
        worst = judged[0]
        for t in judged[1:]:
            if rank_key(t["final"]) > rank_key(best["final"]):
                best = t
            if rank_key(t["final"]) < rank_key(worst["final"]):
                worst = t
        if rank_key(best["final"]) == rank_key(worst["final"]):
            stats.ties += 1
            continue
        pairs.append(PreferencePair(query, best["response"], worst["response"]))
        margin = float(best["final"]["score"]) - float(worst["final"]["score"])
        stats.margins.append(round(margin, 1))
    stats.pairs = len(pairs)
    return pairs, stats


def agreement(traces: Iterable[dict[str, Any]], labelled: list[LabelledExample],
              pairs: list[PreferencePair] | None = None) -> dict[str, float]:
    """How well the curated verdicts match ``labelled`` (matched on exact query + response).

    ``verdict_accuracy`` and ``verdict_kappa`` compare good/bad with label 1/0 over the
    matched candidates that got a verdict; ``pair_accuracy`` is the share of pairs whose
    chosen and rejected are both labelled, with different labels, where chosen is the one
    labelled 1.
    """
    from zhufu.pipeline.evaluation.metrics import accuracy, cohen_kappa

    labels: dict[tuple[str, str], int] = {}
    for ex in labelled:
        labels.setdefault((ex.query, ex.response), ex.label)
    y_true: list[int] = []
    y_pred: list[int] = []
    unjudged = 0
    for t in traces:
        key = (t["query"], t["response"])
        if key not in labels:
            continue
        if not t.get("final"):
            unjudged += 1
            continue
        y_true.append(labels[key])
        y_pred.append(1 if t["final"]["verdict"] == "good" else 0)
    out: dict[str, float] = {"agreement_matched": float(len(y_true)),
                             "agreement_unjudged": float(unjudged)}
    if y_true:
        out["verdict_accuracy"] = float(accuracy(y_true, y_pred))
        out["verdict_kappa"] = float(cohen_kappa(y_true, y_pred))
    if pairs:
        hits = total = 0
        for p in pairs:
            a, b = labels.get((p.query, p.chosen)), labels.get((p.query, p.rejected))
            if a is None or b is None or a == b:
                continue
            total += 1
            hits += int(a > b)
        out["pair_labelled"] = float(total)
        if total:
            out["pair_accuracy"] = hits / total
    return out
