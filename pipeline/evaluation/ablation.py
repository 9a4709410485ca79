"""Did an ablated component change anything? Measured before training on its output.

``zhufu run --ablate debate,reflector`` builds a reward without one component (curation
without the advocate/critic debate; judge training without the reflector). When the
component changed nothing downstream — the same pairs, or a judge that scores every test
text the same — training a reward and a policy on the ablated output would repeat the full
run's row exactly, so the run reports the measurement instead of a row that cannot differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _final_verdicts(trace_path: str) -> dict[tuple[str, str], tuple[str, float]]:
    """(query, response) → (final verdict, score) from a curation trace (JSONL)."""
    out = {}
    for line in Path(trace_path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            final = row.get("final") or {}
            out[(row["query"], row["response"])] = (final.get("verdict"), final.get("score"))
    return out


def _pairs(path: str) -> list[tuple[str, str, str]]:
    from zhufu.pipeline.data.loaders import load_pairs

    return [(p.query, p.chosen, p.rejected) for p in load_pairs(path)]


def curation_changes(full: dict[str, str], ablated: dict[str, str]) -> dict[str, Any]:
    """Compare two curations' outputs (``trace`` and ``pairs`` of each): candidates in
    both, how many final verdicts and scores differ, and how many pairs are not in both."""
    a, b = _final_verdicts(full["trace"]), _final_verdicts(ablated["trace"])
    common = a.keys() & b.keys()
    pa, pb = set(_pairs(full["pairs"])), set(_pairs(ablated["pairs"]))
    return {"candidates": len(common),
            "candidates_only_in_one": len(a.keys() ^ b.keys()),
            "verdicts_changed": sum(a[k][0] != b[k][0] for k in common),
            "scores_changed": sum(a[k][1] != b[k][1] for k in common),
            "pairs": [len(pa), len(pb)], "pairs_changed": len(pa ^ pb)}


def judge_changes(full: str, ablated: str) -> dict[str, Any]:
    """Score the project's judge test sets (every split) and its labelled starter rows with
    both judges (specs): how many verdicts and overall scores differ."""
    from zhufu.pipeline.data import starter_labelled
    from zhufu.pipeline.evaluation.judge_suite import judge_scorer
    from zhufu.pipeline.judge.testsets import degenerate_items, principle_pairs

    texts = [(p.query, t) for p in principle_pairs() for t in (p.good, p.bad)]
    texts += [(d.query, d.response) for d in degenerate_items()]
    texts += [(e.query, e.response) for e in starter_labelled()]
    (sa, la), (sb, lb) = judge_scorer(full)(texts), judge_scorer(ablated)(texts)
    return {"texts": len(texts),
            "verdicts_changed": sum(x != y for x, y in zip(la or [], lb or [], strict=True)),
            "scores_changed": sum(abs(x - y) > 1e-6 for x, y in zip(sa, sb, strict=True))}


def unchanged(changes: dict[str, Any]) -> bool:
    """True when what the next training step reads is the same: for a curation its pairs
    (the reward model trains on pairs only, so a changed verdict that moves no pair changes
    nothing downstream); for a judge every verdict and score."""
    if "pairs_changed" in changes:
        return not changes["pairs_changed"]
    return not (changes["verdicts_changed"] or changes["scores_changed"])
