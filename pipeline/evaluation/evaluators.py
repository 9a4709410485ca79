"""Evaluators for the policy comparison besides the judge: a score per (query, greeting).

A policy trained against the judge is graded by the judge; one trained against the reward
model by the reward model. To see self-preference, the comparison also asks an evaluator
that neither reward was built from:

- :func:`llm_evaluator`: an LLM judge (``openai:MODEL@URL``, or any judge spec
  :func:`zhufu.pipeline.judge.load_judge` takes) — its overall 1–5 score;
- :func:`held_out_evaluator` (offline): the character n-gram Bradley–Terry scorer
  (:mod:`zhufu.pipeline.evaluation.ngram_baseline`) fitted on the parts of the project's own
  labelled test sets that no reward trains on: the ``held_out`` and ``final`` splits of the
  principle pairs and of the degenerate set (:mod:`zhufu.pipeline.judge.testsets`; the
  shipped judge and ``zhufu run``'s judge train on the ``tune`` split at most, the reward
  model on curated pairs). Each degenerate answer is paired with the good greeting of a
  principle pair of the same split. How far to trust it is measured, not assumed: fitted on
  one split it ranks the pairs of the other (two different writers: hand-written and
  generator-made pairs vs template-made ones) — those accuracies go in its ``about``.

It sees the greeting's characters only (not the query), so it cannot tell a wrong occasion
from a right one unless the words give it away; a few hundred pairs teach it taboo words,
adverts, layout and degenerate text, little about creativity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from zhufu.pipeline import aio

#: (queries, responses) -> one score per response; higher is better.
ScoreFn = Callable[[Sequence[str], Sequence[str]], list[float]]

#: The test-set splits no reward trains on (the judge's training may use ``tune``).
UNSEEN_SPLITS = ("held_out", "final")


@dataclass
class Evaluator:
    """A scorer and what a reader of the report needs to know about it."""

    score: ScoreFn
    about: dict[str, object] = field(default_factory=dict)


Pairs = dict[str, tuple[list[str], list[str]]]


def _tune_texts() -> set[str]:
    """Every text of the ``tune`` split (which judge training may use)."""
    from zhufu.pipeline.judge.testsets import degenerate_items, principle_pairs

    return ({t for p in principle_pairs(("tune",)) for t in (p.good, p.bad)}
            | {d.response for d in degenerate_items(("tune",))})


def _pairs(split: str) -> Pairs:
    """(chosen, rejected) of one split by part: ``principle`` pairs, and ``degenerate``:
    every degenerate answer against a good greeting of the same split's pairs (cycled).
    Rows whose text also occurs in the ``tune`` split (``""``, ``"。"``…) are left out."""
    from zhufu.pipeline.judge.testsets import degenerate_items, principle_pairs

    seen = _tune_texts()
    pairs = [p for p in principle_pairs((split,)) if not {p.good, p.bad} & seen]
    if not pairs:
        raise ValueError(f"no principle pairs in split {split!r}")
    items = [d for d in degenerate_items((split,)) if d.response not in seen]
    return {"principle": ([p.good for p in pairs], [p.bad for p in pairs]),
            "degenerate": ([pairs[i % len(pairs)].good for i in range(len(items))],
                           [d.response for d in items])}


def _joined(parts: Sequence[tuple[list[str], list[str]]]) -> tuple[list[str], list[str]]:
    return [t for c, _ in parts for t in c], [t for _, r in parts for t in r]


def held_out_evaluator(seed: int = 0) -> Evaluator:
    """The offline independent evaluator (module docstring), with its size and its pair
    accuracy across the two splits (per part) in ``about``."""
    from zhufu.pipeline.evaluation.metrics import pair_accuracy
    from zhufu.pipeline.evaluation.ngram_baseline import fit_ngram_baseline

    data = {split: _pairs(split) for split in UNSEEN_SPLITS}
    cross: dict[str, dict[str, float]] = {}
    for fit_on, test_on in (UNSEEN_SPLITS, UNSEEN_SPLITS[::-1]):
        model = fit_ngram_baseline(*_joined(list(data[fit_on].values())), seed=seed)
        cross[f"fit_{fit_on}_test_{test_on}"] = {
            part: pair_accuracy(list(model.score(c)), list(model.score(r)))
            for part, (c, r) in data[test_on].items()}
    chosen, rejected = _joined([v for d in data.values() for v in d.values()])
    model = fit_ngram_baseline(chosen, rejected, seed=seed)

    def score(queries: Sequence[str], responses: Sequence[str]) -> list[float]:
        return [float(x) for x in model.score(list(responses))]

    return Evaluator(score, {
        "kind": "character n-gram Bradley-Terry scorer (offline)",
        "trained_on": "principle pairs and degenerate answers of the judge test sets' "
                      f"{' and '.join(UNSEEN_SPLITS)} splits (no reward trains on them)",
        "pairs": {part: sum(len(d[part][0]) for d in data.values())
                  for part in ("principle", "degenerate")},
        "pair_accuracy_across_splits": cross,
        "sees": "the greeting's characters only, not the query"})


def llm_evaluator(spec: str) -> Evaluator:
    """An LLM judge (``openai:MODEL@URL`` …) as evaluator: its overall 1–5 score; a failed
    judgement counts as the judge's neutral 3.0 (``about['failures']`` after scoring)."""
    from zhufu.pipeline.judge import load_judge

    about: dict[str, object] = {"kind": "LLM judge", "spec": spec, "failures": 0}

    def score(queries: Sequence[str], responses: Sequence[str]) -> list[float]:
        judge = load_judge(spec)

        async def run() -> list[float]:
            try:
                results = await judge.score_many(list(zip(queries, responses, strict=True)))
            finally:
                await judge.aclose()
            return [r.overall for r in results]

        scores = aio.run(run())
        about["failures"] = int(about["failures"]) + judge.failures  # type: ignore[arg-type]
        return scores

    return Evaluator(score, about)


def independent_evaluator(spec: str | None, seed: int = 0) -> Evaluator:
    """:func:`llm_evaluator` when ``spec`` names an LLM judge, else :func:`held_out_evaluator`."""
    return llm_evaluator(spec) if spec else held_out_evaluator(seed)
