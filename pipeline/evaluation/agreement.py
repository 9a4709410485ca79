"""``zhufu eval agreement``: how often a scorer agrees with labelled data, next to length.

Input: labelled JSONL (``query``, ``response``, ``label``) or ShareGPT preference pairs.
Pairs are also read as labelled rows (chosen = 1, rejected = 0), so both inputs report the
same labelled figures; pairs add pairwise accuracy, "longer wins" and the near-same-length
subset. Scorers: ``judge`` (the default judge), ``judge:SPEC`` (any judge spec) or
``rm:PATH_OR_URI`` (a reward model, scored by ``zhufu.pipeline.rewards.rm.score_texts``;
its labels are ``score >= 0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zhufu.pipeline import aio
from zhufu.pipeline.analysis.text import char_length
from zhufu.pipeline.errors import DataError, ModelSpecError
from zhufu.pipeline.evaluation import metrics as M


@dataclass
class Scored:
    scores: list[float]
    labels: list[int]
    failures: int = 0


class ScorerSpecError(ModelSpecError):
    """A --scorer value that is not judge, judge:SPEC or rm:PATH_OR_URI."""


def score_rows(scorer: str, queries: Sequence[str], responses: Sequence[str],
               progress: bool = False) -> Scored:
    """Score each (query, response) with the scorer spec; one score and 0/1 label each."""
    kind, _, arg = scorer.partition(":")
    if kind == "judge":
        from zhufu.pipeline.judge import load_judge

        async def run() -> Scored:
            judge = load_judge(arg or None)
            try:
                results = await judge.score_many(list(zip(queries, responses, strict=True)),
                                                 progress=progress)
            finally:
                await judge.aclose()
            return Scored([r.score for r in results], [r.label for r in results],
                          judge.failures)

        return aio.run(run())
    if kind == "rm":
        if not arg:
            raise ScorerSpecError("scorer 'rm:' needs a model path or URI, "
                                  "e.g. rm:models:/zhufu-reward/1")
        try:
            from zhufu.pipeline.rewards.rm import score_texts
        except ImportError as e:
            raise ScorerSpecError(f"reward-model scoring is not available: {e}") from e
        scores = [float(s) for s in score_texts(arg, list(queries), list(responses))]
        return Scored(scores, [int(s >= 0) for s in scores])
    raise ScorerSpecError(f"scorer {scorer!r}: use judge, judge:SPEC or rm:PATH_OR_URI")


def labelled_report(lengths: Sequence[int], gold: Sequence[int],
                    scored: Scored) -> dict[str, Any]:
    """The figures every input gets: accuracy, kappa, AUC, length rule, bands."""
    rule = M.best_length_rule(lengths, gold)
    rule_pred = rule.predict(lengths)
    bands = M.band_accuracy(lengths, gold, scored.labels)
    rule_bands = M.band_accuracy(lengths, gold, rule_pred)
    for name, row in bands.items():
        row["length_rule_accuracy"] = rule_bands[name]["accuracy"]
    good = [n for n, y in zip(lengths, gold, strict=True) if y]
    bad = [n for n, y in zip(lengths, gold, strict=True) if not y]
    return {
        "n": len(gold),
        "accuracy": M.accuracy(gold, scored.labels),
        "cohen_kappa": M.cohen_kappa(gold, scored.labels),
        "auc": M.auc(scored.scores, gold),
        "length_threshold_accuracy": rule.accuracy,
        "length_rule": {"threshold": rule.threshold, "direction": rule.direction},
        "bands": bands,
        "predicted_good_rate": sum(scored.labels) / max(1, len(scored.labels)),
        "mean_length": {"good": sum(good) / max(1, len(good)), "bad": sum(bad) / max(1, len(bad))},
        "failures": scored.failures,
    }


def agreement(data: str, scorer: str = "judge", progress: bool = False) -> dict[str, Any]:
    """Read ``data`` (labelled JSONL or preference pairs), score it, return the report dict."""
    from zhufu.pipeline.data import formats as F
    from zhufu.pipeline.data.loaders import load_labelled, load_pairs

    fmt = F.detect_format(data)
    if fmt == F.SHAREGPT_PAIRS:
        pairs = load_pairs(data)
        queries = [p.query for p in pairs] * 2
        responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
        gold = [1] * len(pairs) + [0] * len(pairs)
    elif fmt == F.LABELLED_JSONL:
        rows = load_labelled(data)
        queries = [r.query for r in rows]
        responses = [r.response for r in rows]
        gold = [r.label for r in rows]
    else:
        raise DataError(data, None, None, f"format {fmt!r}; agreement needs labelled JSONL "
                        "(query, response, label) or ShareGPT preference pairs")
    scored = score_rows(scorer, queries, responses, progress=progress)
    lengths = [char_length(r) for r in responses]
    report: dict[str, Any] = {"data": str(data), "format": fmt, "scorer": scorer}
    report.update(labelled_report(lengths, gold, scored))
    if fmt == F.SHAREGPT_PAIRS:
        n = len(gold) // 2
        sc, sr = scored.scores[:n], scored.scores[n:]
        lc, lr = lengths[:n], lengths[n:]
        near = M.near_same_length(lc, lr)
        idx = [i for i, m in enumerate(near) if m]
        report.update({
            "n_pairs": n,
            "pair_accuracy": M.pair_accuracy(sc, sr),
            "longer_wins_accuracy": M.pair_accuracy(lc, lr),
            "near_same_length_n": len(idx),
            "near_same_length_accuracy": M.pair_accuracy([sc[i] for i in idx],
                                                         [sr[i] for i in idx]),
            "near_same_length_longer_wins_accuracy": M.pair_accuracy(
                [lc[i] for i in idx], [lr[i] for i in idx]),
        })
    return report
