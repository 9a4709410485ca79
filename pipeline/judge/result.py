"""The judge's answer for one greeting, and the lenient reader of an LLM's JSON reply.

:func:`parse_judge_output` accepts the contract's shape and the usual deviations (scores
as bare numbers, Chinese dimension names, dimensions at the top level, verdicts written as
好/合格/pass/1, a missing overall or verdict that can be derived). It returns None when
nothing usable is there; the judge then records a failure and a neutral result.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from zhufu.pipeline.judge.principles import DIMENSION_KEYS, PRINCIPLES
from zhufu.pipeline.llm.parsing import parse_json_output

#: The score a failed judgement gets (the middle of 1–5); its label is 0.
NEUTRAL_SCORE = 3.0
#: Overall score at or above which a reply without a verdict counts as "good".
DERIVED_GOOD_AT = 3.5

_ALIASES = {p.name: p.key for p in PRINCIPLES} | {
    "language": "language_quality", "fluency": "language_quality", "语言": "language_quality",
    "creative": "creativity", "originality": "creativity", "创意性": "creativity",
    "emotion": "emotional_resonance", "emotional": "emotional_resonance",
    "情感": "emotional_resonance", "cultural": "cultural_appropriateness",
    "appropriateness": "cultural_appropriateness", "文化": "cultural_appropriateness",
    "适宜性": "cultural_appropriateness", "content": "content_richness",
    "richness": "content_richness", "内容": "content_richness", "内容丰富": "content_richness",
}
_GOOD = {"good", "pass", "passed", "yes", "true", "1", "好", "合格", "通过", "优秀", "是"}
_BAD = {"bad", "fail", "failed", "no", "false", "0", "差", "不合格", "不通过", "否", "坏"}


@dataclass
class JudgeResult:
    """Per-dimension 1–5 scores with reasons, an overall score and a verdict.

    ``ok`` is False for a failed judgement (call error or unreadable reply): its scores are
    neutral and ``error`` says what went wrong.
    """

    scores: dict[str, float]
    overall: float
    verdict: str  # "good" | "bad"
    reason: str = ""
    reasons: dict[str, str] = field(default_factory=dict)
    strengths: list[str] = field(default_factory=list)
    weaknesses: list[str] = field(default_factory=list)
    ok: bool = True
    error: str | None = None

    @property
    def label(self) -> int:
        return int(self.verdict == "good")

    @property
    def score(self) -> float:
        """The number to rank by (higher is better): the overall 1–5 score."""
        return self.overall

    @classmethod
    def neutral(cls, error: str) -> JudgeResult:
        return cls(scores=dict.fromkeys(DIMENSION_KEYS, NEUTRAL_SCORE), overall=NEUTRAL_SCORE,
                   verdict="bad", reason=f"judge failed: {error}", ok=False, error=error)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        x = float(value)
    elif isinstance(value, str):
        try:
            x = float(value.strip().split("/")[0])
        except ValueError:
            return None
    else:
        return None
    if math.isnan(x) or math.isinf(x):
        return None
    return min(5.0, max(1.0, x))


def _dimension_key(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    key = name.strip()
    if key in DIMENSION_KEYS:
        return key
    low = key.lower().replace(" ", "_")
    if low in DIMENSION_KEYS:
        return low
    return _ALIASES.get(key) or _ALIASES.get(low)


def _verdict(value: Any) -> str | None:
    if isinstance(value, bool):
        return "good" if value else "bad"
    if isinstance(value, int | float):
        return "good" if value >= 1 else "bad"
    if isinstance(value, str):
        v = value.strip().lower().strip("\"'。.！! ")
        if v in _GOOD:
            return "good"
        if v in _BAD:
            return "bad"
    return None


def result_from_obj(obj: dict[str, Any]) -> JudgeResult | None:
    """A :class:`JudgeResult` from a parsed reply, or None when it holds nothing usable."""
    raw_scores = obj.get("scores") if isinstance(obj.get("scores"), dict) else obj
    scores: dict[str, float] = {}
    reasons: dict[str, str] = {}
    for name, value in raw_scores.items():
        key = _dimension_key(name)
        if key is None:
            continue
        if isinstance(value, dict):
            s = _number(value.get("score"))
            if isinstance(value.get("reason"), str):
                reasons[key] = value["reason"]
        else:
            s = _number(value)
        if s is not None:
            scores[key] = s
    overall = _number(obj.get("overall", obj.get("overall_score", obj.get("score"))))
    verdict = _verdict(obj.get("verdict", obj.get("label", obj.get("judgement"))))
    if not scores and overall is None and verdict is None:
        return None
    if overall is None:
        overall = sum(scores.values()) / len(scores) if scores else (
            4.0 if verdict == "good" else 2.0)
    fill = overall
    scores = {k: scores.get(k, fill) for k in DIMENSION_KEYS}
    if verdict is None:
        verdict = "good" if overall >= DERIVED_GOOD_AT else "bad"
    reason = obj.get("reason", obj.get("explanation", ""))
    lists = {k: [str(x) for x in obj.get(k, []) if isinstance(x, str | int | float)]
             if isinstance(obj.get(k), list) else [] for k in ("strengths", "weaknesses")}
    return JudgeResult(scores=scores, overall=overall, verdict=verdict,
                       reason=reason if isinstance(reason, str) else str(reason),
                       reasons=reasons, **lists)


def parse_judge_output(text: Any) -> JudgeResult | None:
    """Read a judge reply leniently; None on garbage (never raises)."""
    obj = parse_json_output(text)
    if obj is None:
        return None
    try:
        return result_from_obj(obj)
    except Exception:  # noqa: BLE001 - "None on garbage" whatever the shape
        return None
