"""A GRPO reward against one stock closing line pasted onto every greeting (opt-in).

A judge scores one greeting at a time, so a closing line it likes (愿您天天有笑容，岁岁都安康)
scores as well on the hundredth greeting as on the first, and a policy optimising it learns
to end more and more greetings with that line (docs/policy.md: after 60 GRPO steps of `zhufu
run` one line closed 13 of 128 held-out greetings, against at most 7 for SFT). A reader sees
the same wish pasted on; no single greeting shows it.

:class:`VarietyReward` remembers the closing sentences of the last ``window`` completions
(their Chinese characters, with the query each answered). A completion whose closing sentence
ends more than ``floor`` of the remembered completions *for other queries* loses reward, down
to 0 at ``ceiling``; answers to the same query may share a line (a group of GRPO generations
for one prompt often does). GRPO samples at temperature 1.0, where lines spread less than in
the comparison's samples (0.7), hence the low defaults: 1.5 % and 6 %. At those the five
general closing lines of the embedded SFT data (about 3 % of its greetings each) already cost
a little (0.94 mean over that data); with 4 % and 12 % the reward stayed at 1.0 on nearly every
step of the embedded run and changed nothing.

It is not in `zhufu run`'s mix: on four seeds of 60 steps it brought the most repeated closing
line back to SFT's level (13 → 8, 10 → 7 answers…) and cut wrong occasions, but the independent
evaluator's length-controlled win went from 0.53 to 0.51 on average (docs/policy.md). Add it
to a GRPO config as ``{name: variety, weight: 0.25}``. The memory is per process (each rank
sees its own completions) and starts empty on a resume.

>>> reward = VarietyReward(window=8, floor=0.2, ceiling=0.5, min_others=4)
>>> queries = ["考试", "开学", "满月", "生日"]
>>> stock = "。愿你永远有人陪，永远有梦追。"
>>> reward(queries, ["加油" + stock, "开学快乐" + stock, "宝宝满月快乐" + stock, "生日快乐！"],
...        query=queries)
[0.0, 0.0, 0.0, 1.0]
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from zhufu.pipeline.analysis.text import closing_line
from zhufu.pipeline.rewards.rm import message_text


class VarietyReward:
    """``VarietyReward()(prompts, completions, query=[...]) -> list[float]`` in [0, 1].

    A share is taken over at least ``min_others`` answers, so a short memory (the first
    steps) cannot make a line look common."""

    __name__ = "variety"

    def __init__(self, window: int = 256, floor: float = 0.015, ceiling: float = 0.06,
                 min_others: int = 128) -> None:
        if not 0 <= floor < ceiling <= 1:
            raise ValueError(f"variety: need 0 <= floor < ceiling <= 1, got {floor}, {ceiling}")
        self.floor, self.ceiling, self.min_others = floor, ceiling, min_others
        self._seen: deque[tuple[str, str]] = deque(maxlen=window)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kw: Any
                 ) -> list[float]:
        queries = [str(q) for q in (kw.get("query") or [message_text(p) for p in prompts])]
        lines = [closing_line(message_text(c)) for c in completions]
        self._seen.extend(zip(queries, lines, strict=True))
        # counted once per call: a line's uses for other queries = all its uses minus this
        # query's, over the remembered answers to other queries
        by_line = Counter(line for _, line in self._seen)
        by_pair = Counter(self._seen)
        by_query = Counter(query for query, _ in self._seen)
        remembered = len(self._seen)
        return [self.value((by_line[line] - by_pair[query, line])
                           / max(remembered - by_query[query], self.min_others), line)
                for query, line in zip(queries, lines, strict=True)]

    def value(self, share: float, line: str) -> float:
        """1 while ``share`` (of the remembered answers to other queries closing with
        ``line``) is at most ``floor``, falling linearly to 0 at ``ceiling``; 1 for no
        closing line."""
        if not line:
            return 1.0
        over = (share - self.floor) / (self.ceiling - self.floor)
        return 1.0 - min(1.0, max(0.0, over))
