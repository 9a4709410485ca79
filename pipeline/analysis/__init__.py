"""The offline principle analyser: a deterministic judge of one greeting against its query.

``analyse(query, response)`` reads what the query asks (occasion, recipient, register,
length, tone), extracts named features from the greeting with jieba and the lexicons under
``lexicons/`` (occasion fit, taboo words, honorifics, clichés, imagery, idioms, repetition,
punctuation, emoji, promotion, preambles, lists, truncation, injected instructions…), and
scores the five dimensions with the editable :class:`JudgeWeights`.
"""

from __future__ import annotations

from zhufu.pipeline.analysis.features import Features, extract_features
from zhufu.pipeline.analysis.query import QueryIntent, parse_query
from zhufu.pipeline.analysis.scoring import Analysis, DimensionScore, score_features
from zhufu.pipeline.analysis.weights import DIMENSIONS, JudgeWeights, PhraseRule

__all__ = [
    "DIMENSIONS", "Analysis", "DimensionScore", "Features", "JudgeWeights", "PhraseRule",
    "QueryIntent", "analyse", "extract_features", "parse_query", "score_features",
]

_DEFAULT: JudgeWeights | None = None


def _shared_default() -> JudgeWeights:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = JudgeWeights()
    return _DEFAULT


def default_weights() -> JudgeWeights:
    """A fresh copy of the hand-set analyser weights (:class:`JudgeWeights` defaults); edit it
    freely. The shipped trained judge is :func:`zhufu.pipeline.judge.default_state`."""
    return JudgeWeights.from_dict(_shared_default().to_dict())


def analyse(query: str, response: str, weights: JudgeWeights | None = None) -> Analysis:
    """Analyse ``response`` as a greeting answering ``query``."""
    return score_features(extract_features(query, response), weights or _shared_default())
