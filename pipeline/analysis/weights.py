"""The analyser's "principles state": feature weights, thresholds, vetoes and phrase rules.

Plain data, JSON round-trip. A dimension's score is ``base + Σ weight × feature`` clipped to
1–5; the overall score is the weighted mean of the dimensions minus nothing else; the verdict
is "good" when the overall reaches ``threshold`` and no veto feature reaches its limit.
A later stage (the reflector of judge training) edits exactly these numbers and may add
:class:`PhraseRule` entries — each one a readable pattern with a weight and a note.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DIMENSIONS: tuple[str, ...] = (
    "language_quality",
    "creativity",
    "emotional_resonance",
    "cultural_appropriateness",
    "content_richness",
)


@dataclass
class PhraseRule:
    """A readable rule: where ``pattern`` matches the greeting, add ``weight`` to ``dimension``.

    ``veto`` makes a match force the verdict "bad". ``regex`` False means a plain substring.
    """

    pattern: str
    dimension: str
    weight: float
    note: str = ""
    regex: bool = False
    veto: bool = False

    def __post_init__(self) -> None:
        if self.dimension not in DIMENSIONS:
            raise ValueError(f"rule {self.pattern!r}: unknown dimension {self.dimension!r}")
        if self.regex:
            try:
                re.compile(self.pattern)
            except re.error as e:
                raise ValueError(f"rule {self.pattern!r}: bad regex: {e}") from e

    def matches(self, text: str) -> bool:
        return bool(re.search(self.pattern, text)) if self.regex else self.pattern in text


def _default_weights() -> dict[str, dict[str, float]]:
    return {
        "language_quality": {
            "repetition": -3.0, "punct_issues": -0.4, "truncated": -1.5, "latin_ratio": -2.0,
            "markdown": -1.0, "no_terminal_punct": -0.2, "empty": -3.0, "emoji": -0.3,
            "preamble": -1.0, "several_greetings": -1.0, "meta": -0.5, "sentences": 0.15,
            "format_marks": -0.8, "comma_chain": -0.05, "emoji_end": -0.2, "word_repeat": -8.0,
        },
        "creativity": {
            "simile": 0.3, "imagery": 0.35, "parallelism": 0.3, "idioms": 0.2,
            "balanced_clauses": 0.3,
            "cliches": -0.35, "cliche_ratio": -1.5, "template_frames": -0.4,
            "repetition": -1.5, "generic_opening": -0.2, "abstract_ratio": -0.4,
            "filler": -0.1, "four_char_clauses": -0.2, "imagery_chars": 0.3, "scene_then_wish": 0.2,
            "and_lists": -0.1, "semicolons": 0.1, "everyday": 0.15, "opens_with_wish": -0.2,
            "word_repeat": -6.0,
        },
        "emotional_resonance": {
            "emotion": 0.3, "address_opener": 0.8, "first_person": 0.3, "recipient_named": 0.2,
            "exclaims": 0.2, "too_formal": -0.3, "emoji_spam": -0.5, "scene_then_wish": 0.1,
            "you_density": -0.2, "wish_after_stop": 0.1, "everyday": 0.1,
        },
        "cultural_appropriateness": {
            "wrong_occasion": -2.5, "taboo": -2.0, "honorific_slip": -0.8,
            "honorific_used": 0.3, "recipient_mismatch": -1.0, "promo": -1.5,
            "injection": -2.5, "emoji_spam": -0.8, "occasion_named": 0.2, "meta_echo": -0.5,
            "query_copy": -0.6, "idioms": 0.1, "negativity": -1.5, "formal_mismatch": -1.0,
            "casual_mismatch": -1.0, "too_formal": -0.5, "format_marks": -0.8,
        },
        "content_richness": {
            "clauses": 0.2, "wish_facets": 0.15, "specific": 0.1, "imagery": 0.1,
            "length_fit": 0.8, "length_log": 1.0, "too_short": -0.6, "too_long": -0.6,
            # length relative to the query's request, by band (see features.LENGTH_BANDS)
            "len_rel_0": -0.6, "len_rel_1": -0.4, "len_rel_2": -0.2, "len_rel_3": -0.1,
            "len_rel_4": 0.0, "len_rel_5": 0.0, "len_rel_6": 0.0, "len_rel_7": 0.0,
            "len_rel_8": -0.2, "short_as_asked": 0.2,
        },
    }


def _default_caps() -> dict[str, dict[str, float]]:
    ca, lq, er = "cultural_appropriateness", "language_quality", "emotional_resonance"
    return {
        "taboo": {ca: 1.5}, "wrong_occasion": {ca: 1.5}, "promo": {ca: 1.5},
        "injection": {ca: 1.0}, "recipient_mismatch": {ca: 1.5},
        "negativity": {ca: 2.0, er: 2.0}, "casual_mismatch": {ca: 2.0},
        "formal_mismatch": {ca: 2.0, er: 2.5}, "format_marks": {lq: 2.0},
        "several_greetings": {lq: 2.0}, "truncated": {lq: 1.5},
    }


@dataclass
class JudgeWeights:
    """Everything the feature judge's scores depend on, as editable numbers."""

    base: dict[str, float] = field(default_factory=lambda: {
        "language_quality": 3.8, "creativity": 2.2, "emotional_resonance": 2.2,
        "cultural_appropriateness": 4.2, "content_richness": 1.4})
    weights: dict[str, dict[str, float]] = field(default_factory=_default_weights)
    dimension_weights: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(DIMENSIONS, 1.0))
    threshold: float = 3.45
    veto: dict[str, float] = field(default_factory=lambda: {
        "wrong_occasion": 1.0, "taboo": 1.0, "promo": 2.0, "injection": 1.0, "preamble": 1.0,
        "several_greetings": 1.0, "meta": 1.0, "truncated": 1.0, "empty": 1.0,
        "emoji_spam": 1.0, "recipient_mismatch": 1.0, "negativity": 1.0,
        "casual_mismatch": 1.0, "formal_mismatch": 2.0, "format_marks": 1.0})
    #: feature → {dimension: highest score}: when the feature's veto fires, the dimension it
    #: breaks is capped (a taboo word makes cultural appropriateness 1.5 at most, whatever
    #: else the greeting does well), so a vetoed greeting also *scores* low. Not trained.
    caps: dict[str, dict[str, float]] = field(default_factory=_default_caps)
    #: feature → highest *overall* score when its veto fires: a greeting for the wrong
    #: occasion or recipient, with a taboo word or an advert, is not a good answer however
    #: well it is written, and a reward that optimises the overall must see that (with the
    #: dimension cap alone a wrong-occasion greeting kept ~3.6 of 5). Not trained.
    overall_caps: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("wrong_occasion", "taboo", "recipient_mismatch", "promo", "injection"), 2.5))
    rules: list[PhraseRule] = field(default_factory=list)
    version: int = 1
    notes: str = "hand-set defaults of judge v1"

    def __post_init__(self) -> None:
        self.rules = [r if isinstance(r, PhraseRule) else PhraseRule(**r) for r in self.rules]
        for name in (*self.base, *self.weights, *self.dimension_weights,
                     *(d for c in self.caps.values() for d in c)):
            if name not in DIMENSIONS:
                raise ValueError(f"judge weights: unknown dimension {name!r}")
        if sum(self.dimension_weights.values()) <= 0:
            raise ValueError("judge weights: dimension_weights sum to 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeWeights:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"judge weights: unknown field(s) {sorted(unknown)}")
        return cls(**known)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> JudgeWeights:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def cap_of(self, values: dict[str, float], dimension: str) -> float:
        """The highest score ``dimension`` may get given these feature values (5 = no cap)."""
        cap = 5.0
        for feat, dims in self.caps.items():
            if dimension in dims and values.get(feat, 0.0) >= self.veto.get(feat, 1.0):
                cap = min(cap, dims[dimension])
        return cap

    def overall_cap(self, values: dict[str, float]) -> float:
        """The highest overall score given these feature values (5 = no cap)."""
        return min([5.0, *(cap for feat, cap in self.overall_caps.items()
                           if values.get(feat, 0.0) >= self.veto.get(feat, 1.0))])

    def fingerprint(self) -> str:
        """Stable hash of the settings (used to cache analyses per weights)."""
        import hashlib

        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]
