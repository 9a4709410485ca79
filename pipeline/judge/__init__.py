"""Judge v1: the five principles, the LLM prompt contract, and a judge over any backend.

>>> from zhufu.pipeline.judge import load_judge
>>> judge = load_judge("offline")    # doctest: +SKIP
>>> results = await judge.score_many([("生日祝福语", "生日快乐！")])  # doctest: +SKIP
"""

from __future__ import annotations

from zhufu.pipeline.judge.judge import (
    Judge,
    JudgeSpecError,
    JudgeState,
    load_judge,
    register_judge_resolver,
)
from zhufu.pipeline.judge.principles import PRINCIPLES, Principle, build_messages
from zhufu.pipeline.judge.result import JudgeResult, parse_judge_output

__all__ = [
    "PRINCIPLES", "Judge", "JudgeResult", "JudgeSpecError", "JudgeState", "Principle",
    "build_messages", "load_judge", "parse_judge_output", "register_judge_resolver",
]
