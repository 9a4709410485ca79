"""The degeneracy guard of the ``rm`` reward: text that is not a greeting scores below any that is.

A reward model trained on preference pairs learns what separates their two sides, and the
paper's pairs mostly differ in length: such a model likes a greeting written twice more than
the greeting once, and has never seen punctuation soup or shuffled characters. A policy
optimised against it finds those holes. The guard closes them with the judge's own untrained
degeneracy signals (:func:`zhufu.pipeline.analysis.degeneracy.readability`, one
implementation for both): a completion whose readability factor is below
:data:`~zhufu.pipeline.analysis.degeneracy.READABLE_AT` — where the judge's verdict is
"bad" — is *vetoed*: its reward becomes the call's floor (below). Every other completion
keeps the reward model's score unchanged.

**The floor.** A vetoed completion gets ``min(model_floor, lowest clean score in the call −
MARGIN)``: below every completion of the same call that was not vetoed (what GRPO compares:
a prompt's completions are scored in one call), and below ``model_floor``, the lowest score
the model gives the project's own good greetings minus :data:`MARGIN`
(:func:`reference_floor`). It stays within a few logits of the scores the model gives
greetings, so a vetoed completion in a group does not squash the differences GRPO's
per-group normalisation sees between the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zhufu.pipeline.analysis.degeneracy import READABLE_AT, readability

#: Logits between a vetoed completion and the lowest score it must stay under.
MARGIN = 1.0


def vetoes(queries: Sequence[str], responses: Sequence[str]) -> list[bool]:
    """For each (query, response): True when the response is not a greeting (its
    readability factor is below ``READABLE_AT``, the judge's "bad" verdict).

    >>> vetoes(["生日祝福语"] * 3, ["祝你生日快乐，天天开心！", "！！！！！！", "快乐快乐快乐快乐"])
    [False, True, True]
    """
    if len(queries) != len(responses):
        raise ValueError(f"vetoes: {len(queries)} queries vs {len(responses)} responses")
    return [readability(q, r).readability < READABLE_AT
            for q, r in zip(queries, responses, strict=True)]


@dataclass(frozen=True)
class Guarded:
    """Scores after the guard, and which of them were vetoed."""

    scores: list[float]
    vetoed: list[bool]

    @property
    def n_vetoed(self) -> int:
        return sum(self.vetoed)


def apply_floor(scores: Sequence[float], vetoed: Sequence[bool], model_floor: float) -> Guarded:
    """``scores`` with every vetoed one replaced by the call's floor (module docstring).

    >>> apply_floor([2.0, 5.0, 0.5], [False, True, False], model_floor=-3.0).scores
    [2.0, -3.0, 0.5]
    >>> apply_floor([2.0, 5.0, -4.0], [False, True, False], model_floor=-3.0).scores
    [2.0, -5.0, -4.0]
    """
    if len(scores) != len(vetoed):
        raise ValueError(f"apply_floor: {len(scores)} scores vs {len(vetoed)} vetoes")
    clean = [s for s, v in zip(scores, vetoed, strict=True) if not v]
    floor = min(model_floor, min(clean) - MARGIN) if clean else model_floor
    return Guarded([floor if v else float(s) for s, v in zip(scores, vetoed, strict=True)],
                   list(vetoed))


def guard(queries: Sequence[str], responses: Sequence[str], scores: Sequence[float],
          model_floor: float) -> Guarded:
    """The guard on one call's raw reward-model scores (see :func:`vetoes`, :func:`apply_floor`)."""
    return apply_floor(scores, vetoes(queries, responses), model_floor)


def reference_floor(reference_scores: Sequence[float]) -> float:
    """The model floor: the lowest score of the reference greetings minus :data:`MARGIN`.

    >>> reference_floor([1.5, -0.25, 3.0])
    -1.25
    """
    if not reference_scores:
        raise ValueError("reference_floor: no reference scores")
    return min(float(s) for s in reference_scores) - MARGIN


__all__ = ["MARGIN", "Guarded", "apply_floor", "guard", "reference_floor", "vetoes"]
