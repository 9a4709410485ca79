"""Reward functions for GRPO, each a plain ``(prompts, completions, **kwargs) -> list[float]``.

- :mod:`.rules`: format, length and repetition rules in [0, 1];
- :mod:`.variety`: opt-in, against one closing line pasted onto answers for many queries
  (it remembers recent completions, so each GRPO run builds its own);
- :mod:`.judge_reward`: the trained judge (overall score mapped to [0, 1], or its verdict);
- :mod:`.rm`: a trained reward model (local dir or MLflow URI) — ``rm_reward(spec)``, and
  ``score_texts`` for scoring (query, response) pairs directly; ``rm_reward`` applies
  :mod:`.guard` by default (text that is not a greeting scores below every greeting).

**What a failed reward gives.** A reward function may return ``None`` for a completion it
could not score (the judge's call failed, its reply was unreadable), and the GRPO guard
(:func:`zhufu.pipeline.train.grpo_setup.guarded`) treats a completion whose scoring raised
the same way. Such a completion gets :func:`neutral_fill`'s value: the mean of the same
reward over the other completions of the same prompt, so the failure moves no advantage
(GRPO normalises rewards within each prompt's group), whatever the reward's scale (a
[0, 1] rule, a 1–5 judge mapped to [0, 1], an unbounded reward-model logit). Failures are
counted in the run's ``reward_failures/<name>`` metric.

Importing this package is light: modules import torch only when a reward is built or called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def neutral_fill(prompts: Sequence[Any], values: Sequence[float | None]) -> list[float]:
    """``values`` with each ``None`` replaced by the mean of the scored values for the same
    prompt; for a prompt with none scored, the mean over every prompt; with nothing scored
    at all, 0.0.

    >>> neutral_fill(["a", "a", "a", "b", "b"], [1.0, None, 2.0, None, None])
    [1.0, 1.5, 2.0, 1.5, 1.5]
    >>> neutral_fill(["a"], [None])
    [0.0]
    """
    keys = [repr(p) for p in prompts]
    scored = [v for v in values if v is not None]
    overall = sum(scored) / len(scored) if scored else 0.0
    by_prompt: dict[str, list[float]] = {}
    for key, value in zip(keys, values, strict=True):
        if value is not None:
            by_prompt.setdefault(key, []).append(value)
    out = []
    for key, value in zip(keys, values, strict=True):
        if value is None:
            same = by_prompt.get(key)
            value = sum(same) / len(same) if same else overall
        out.append(float(value))
    return out
