"""Is one closing line pasted onto answers for many queries? A plain count for reports.

A judge scores one greeting at a time, so it cannot see a policy ending everything with the
same stock line (愿你永远有人陪，永远有梦追): the line scores well wherever it goes. The
report shows, per policy, the closing sentence (:func:`~zhufu.pipeline.analysis.text.
closing_line`) that ends answers to the most distinct queries, and the share of answers
ending with it. GRPO's ``variety`` reward (:mod:`zhufu.pipeline.rewards.variety`) acts on
the same line.

>>> stock = "愿你永远有人陪，永远有梦追。"
>>> repeated_closing(["考试", "开学", "满月"],
...                  ["加油！" + stock, "开学快乐！" + stock, "满月快乐，宝宝健康长大！"])
{'line': '愿你永远有人陪永远有梦追', 'queries': 2, 'share': 0.6666666666666666}
>>> repeated_closing([], [])
{'line': '', 'queries': 0, 'share': 0.0}
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from zhufu.pipeline.analysis.text import closing_line


def repeated_closing(queries: Sequence[str], texts: Sequence[str]) -> dict[str, object]:
    """``{line, queries, share}``: the closing line ending answers to the most distinct
    queries (ties: the one seen first), how many queries, and the share of all answers
    that end with it."""
    answers: dict[str, list[str]] = defaultdict(list)
    for query, text in zip(queries, texts, strict=True):
        if line := closing_line(text):
            answers[line].append(query)
    if not answers:
        return {"line": "", "queries": 0, "share": 0.0}
    line = max(answers, key=lambda k: len(set(answers[k])))
    return {"line": line, "queries": len(set(answers[line])),
            "share": len(answers[line]) / len(texts)}
