"""The trained judge as a GRPO reward: async, batched, cached, and never a crashed batch.

TRL awaits async reward functions on its own event loop, so every completion of a step goes
to the judge in one :meth:`Judge.score_many` call (the backend bounds concurrency). Graded
mode maps the overall 1–5 score to [0, 1] — the environment notes explain why: a 0/1 reward
on a weak policy is often constant inside a group, which gives GRPO zero advantage. Binary
mode is the paper's good/bad verdict. A greeting the judge fails on (call error, unreadable
reply) gets ``None`` and is counted in :attr:`JudgeReward.failures`; GRPO gives it the
package's one neutral value (:func:`zhufu.pipeline.rewards.neutral_fill`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from zhufu.pipeline.judge import Judge, load_judge
from zhufu.pipeline.judge.result import JudgeResult
from zhufu.pipeline.rewards.rm import message_text


class JudgeReward:
    """``await JudgeReward(judge)(prompts, completions, query=[...]) -> list[float]``."""

    __name__ = "judge"

    def __init__(self, judge: Judge, binary: bool = False, cache_size: int = 50_000) -> None:
        self.judge = judge
        self.binary = binary
        self.failures = 0
        self._cache: OrderedDict[tuple[str, str], JudgeResult] = OrderedDict()
        self._cache_size = cache_size

    def value(self, result: JudgeResult) -> float | None:
        if not result.ok:
            return None
        if self.binary:
            return float(result.label)
        return min(1.0, max(0.0, (result.overall - 1.0) / 4.0))

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kw: Any
                       ) -> list[float | None]:
        queries = kw.get("query") or [message_text(p) for p in prompts]
        pairs = [(str(q), message_text(c)) for q, c in zip(queries, completions, strict=True)]
        todo = list(dict.fromkeys(p for p in pairs if p not in self._cache))
        if todo:
            for pair, result in zip(todo, await self.judge.score_many(todo), strict=True):
                self.failures += int(not result.ok)
                self._cache[pair] = result
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return [self.value(self._cache[p]) for p in pairs]


def judge_reward(spec: str | None = None, binary: bool = False) -> JudgeReward:
    """A reward from a judge spec (``offline``, a saved judge, ``models:/zhufu-judge@…``)."""
    return JudgeReward(load_judge(spec), binary=binary)
