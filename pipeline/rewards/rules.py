"""Rule rewards for GRPO: one greeting only, a length band, no repeats.

Each is a plain TRL reward function ``(prompts, completions, **kw) -> list[float]`` in
[0, 1]. They read the same features the offline principle analyser computes
(:func:`zhufu.pipeline.analysis.features.extract_features`), so "a list", "a preamble" or
"a repeat" means the same thing to the judge and to these rules. The dataset's ``query``
column (passed by TRL as a keyword) gives the query; without it the prompt text is used.

>>> format_reward(["生日祝福语"], ["好的，以下是三条祝福：\\n1. 生日快乐\\n2. 天天开心"])
[0.0]
>>> format_reward(["生日祝福语"], ["愿你在新的一岁里，眼里有光，心中有爱，所求皆如愿。"])
[1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from zhufu.pipeline.analysis.features import Features, extract_features
from zhufu.pipeline.rewards.rm import message_text

#: Format faults and how much of the format reward each one costs.
FORMAT_PENALTIES = {
    "preamble": 0.6,
    "several_greetings": 0.6,
    "markdown": 0.3,
    "meta": 0.3,
    "meta_echo": 0.3,
    "empty": 1.0,
    "truncated": 0.3,
}


def _features(prompts: Sequence[Any], completions: Sequence[Any], kw: dict[str, Any]
              ) -> list[Features]:
    queries = kw.get("query") or [message_text(p) for p in prompts]
    return [extract_features(str(q), message_text(c)) for q, c in zip(queries, completions,
                                                                        strict=True)]


def _format_score(f: Features) -> float:
    penalty = sum(w for name, w in FORMAT_PENALTIES.items() if f.values.get(name, 0) > 0)
    return max(0.0, 1.0 - penalty)


def format_reward(prompts: Sequence[Any], completions: Sequence[Any], **kw: Any) -> list[float]:
    """1 for exactly one clean greeting; less for preambles, lists, markdown, meta talk."""
    return [_format_score(f) for f in _features(prompts, completions, kw)]


def length_reward(prompts: Sequence[Any], completions: Sequence[Any], **kw: Any) -> list[float]:
    """How well the length fits what the query asks (简短 / 长 / N字 / a default band)."""
    return [f.values.get("length_fit", 0.0) for f in _features(prompts, completions, kw)]


def repetition_reward(prompts: Sequence[Any], completions: Sequence[Any], **kw: Any
                      ) -> list[float]:
    """1 minus the analyser's repetition ratio (repeated phrases and n-grams)."""
    return [1.0 - min(1.0, f.values.get("repetition", 0.0))
            for f in _features(prompts, completions, kw)]


RULE_REWARDS: dict[str, Callable[..., list[float]]] = {
    "format": format_reward,
    "length": length_reward,
    "repetition": repetition_reward,
}
