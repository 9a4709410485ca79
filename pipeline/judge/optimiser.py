"""The offline optimiser of judge training: rewrites the feature judge's standard.

The feature judge (see :mod:`zhufu.pipeline.analysis.scoring`) computes, per dimension,
``clip(base + Σ weight × feature + Σ matched rule weights, 1, 5)``, averages the dimensions
and says "good" when the average reaches ``threshold`` and no veto fires. This module edits
exactly those numbers, in three readable ways:

1. :func:`fit_weights` — gradient steps (Adam) on a logistic loss of ``overall − threshold``
   over labelled examples, through the real clipped scoring function; misjudged examples
   the reflector explained are weighted up. A pull towards the starting weights keeps every
   number close to its hand-set meaning.
2. :func:`mine_rules` — phrase rules from the reflections: short character n-grams of the
   misjudged greetings whose good/bad counts on the training pool are lopsided are grouped
   (one group of warning phrases, one of praised phrases per round) into a
   :class:`PhraseRule` whose note says how many good and bad training greetings contain it.
   The rule list is capped; at the cap the rule with the least evidence × weight goes.
3. :func:`review_vetoes` — a veto that fires on more good than bad training examples is
   switched off (its limit raised), and the note says so; the principle vetoes
   (:data:`PRINCIPLE_VETOES`) are never switched off.

Everything works on cached :class:`Features`, so a round costs milliseconds, and the judge
that results scores identically through :class:`~zhufu.pipeline.judge.Judge`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zhufu.pipeline.analysis.degeneracy import READABLE_AT
from zhufu.pipeline.analysis.features import Features
from zhufu.pipeline.analysis.weights import DIMENSIONS, JudgeWeights, PhraseRule

HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")
#: Logistic loss sharpness: a margin of 1/SHARPNESS on the 1–5 overall is "confident".
SHARPNESS = 4.0
#: A veto limit that nothing reaches (how a veto is switched off).
VETO_OFF = 99.0
#: Vetoes that state a principle (taboo, wrong occasion or recipient, register, advertising,
#: negative undertone, layout, manipulation): labelled data may disagree with a principle
#: now and then, so these are never switched off by :func:`review_vetoes` — a principle
#: that misfires is fixed in the lexicon, where the misfire can be read.
PRINCIPLE_VETOES = frozenset({"taboo", "wrong_occasion", "recipient_mismatch", "promo",
                              "injection", "negativity", "casual_mismatch", "formal_mismatch",
                              "format_marks"})


@dataclass(frozen=True)
class Example:
    """One labelled greeting with its cached features."""

    query: str
    response: str
    label: int
    features: Features
    weight: float = 1.0


def phrases_of(text: str, sizes: Sequence[int] = (2, 3, 4)) -> set[str]:
    """Character n-grams of the Chinese runs of ``text`` (the candidate rule phrases)."""
    out: set[str] = set()
    for run in HAN_RUN.findall(text):
        for n in sizes:
            out.update(run[i:i + n] for i in range(len(run) - n + 1))
    return out


def veto_mask(weights: JudgeWeights, examples: Sequence[Example]) -> np.ndarray:
    """True where a veto (feature or veto rule) forces "bad"."""
    out = np.zeros(len(examples), dtype=bool)
    veto_rules = [r for r in weights.rules if r.veto]
    for i, ex in enumerate(examples):
        vals = ex.features.values
        out[i] = vals.get("readability", 1.0) < READABLE_AT or any(
            vals.get(f, 0.0) >= lim for f, lim in weights.veto.items()) or any(
            r.matches(ex.features.response) for r in veto_rules)
    return out


class Scorer:
    """The scoring function of :mod:`~zhufu.pipeline.analysis.scoring`, vectorised over a
    fixed set of examples, with its gradient with respect to every weight."""

    def __init__(self, weights: JudgeWeights, examples: Sequence[Example]) -> None:
        self.weights = weights
        self.examples = list(examples)
        self.names = {d: list(weights.weights.get(d, {})) for d in DIMENSIONS}
        self.x = {d: np.array([[ex.features.values.get(f, 0.0) for f in self.names[d]]
                               for ex in self.examples], dtype=float).reshape(
                                   len(self.examples), len(self.names[d]))
                  for d in DIMENSIONS}
        self.m = np.array([[float(r.matches(ex.features.response)) for r in weights.rules]
                           for ex in self.examples], dtype=float).reshape(
                               len(self.examples), len(weights.rules))
        self.veto = veto_mask(weights, self.examples)
        #: the readability factor of each example (fixed: nothing trains it)
        self.r = np.array([ex.features.values.get("readability", 1.0)
                           for ex in self.examples], dtype=float)
        #: per dimension, each example's cap (principle vetoes; fixed)
        self.cap = {d: np.array([weights.cap_of(ex.features.values, d)
                                 for ex in self.examples], dtype=float) for d in DIMENSIONS}
        self.y = np.array([ex.label for ex in self.examples], dtype=float)
        self.sample_weight = np.array([ex.weight for ex in self.examples], dtype=float)

    def params(self) -> np.ndarray:
        w = self.weights
        parts: list[float] = []
        for d in DIMENSIONS:
            parts.append(w.base.get(d, 3.0))
            parts.extend(w.weights.get(d, {}).get(f, 0.0) for f in self.names[d])
        parts.extend(r.weight for r in w.rules)
        parts.append(w.threshold)
        return np.array(parts, dtype=float)

    def set_params(self, p: np.ndarray) -> None:
        w, i = self.weights, 0
        for d in DIMENSIONS:
            w.base[d] = float(p[i])
            i += 1
            for f in self.names[d]:
                w.weights[d][f] = float(p[i])
                i += 1
        for r in w.rules:
            r.weight = float(p[i])
            i += 1
        w.threshold = float(p[i])

    def _raw(self, p: np.ndarray) -> dict[str, np.ndarray]:
        raw, i = {}, 0
        rule_w = p[len(p) - 1 - len(self.weights.rules):len(p) - 1]
        for d in DIMENSIONS:
            k = len(self.names[d])
            raw[d] = p[i] + self.x[d] @ p[i + 1:i + 1 + k]
            i += 1 + k
            idx = [j for j, r in enumerate(self.weights.rules) if r.dimension == d]
            if idx:
                raw[d] = raw[d] + self.m[:, idx] @ rule_w[idx]
        return raw

    def overall(self, p: np.ndarray | None = None) -> np.ndarray:
        p = self.params() if p is None else p
        dw = self.weights.dimension_weights
        total = sum(dw.get(d, 0.0) for d in DIMENSIONS)
        raw = self._raw(p)
        return sum(self._dim(raw[d], d) * dw.get(d, 0.0) for d in DIMENSIONS) / total

    def _dim(self, raw: np.ndarray, d: str) -> np.ndarray:
        """A dimension's score: clipped to 1–5 and to its cap, then pulled towards 1 by
        readability."""
        return 1.0 + (np.minimum(np.clip(raw, 1.0, 5.0), self.cap[d]) - 1.0) * self.r

    def predict(self, p: np.ndarray | None = None) -> np.ndarray:
        p = self.params() if p is None else p
        return ((self.overall(p) >= p[-1]) & ~self.veto).astype(int)

    def loss_grad(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted logistic loss of SHARPNESS·(overall − threshold) on non-vetoed rows."""
        dw = self.weights.dimension_weights
        total = sum(dw.get(d, 0.0) for d in DIMENSIONS)
        raw = self._raw(p)
        over = sum(self._dim(raw[d], d) * dw.get(d, 0.0) for d in DIMENSIONS) / total
        sign = 2 * self.y - 1
        z = SHARPNESS * sign * (over - p[-1])
        live = (~self.veto) * self.sample_weight
        norm = max(1e-9, live.sum())
        loss = float((live * np.logaddexp(0, -z)).sum() / norm)
        g_over = -SHARPNESS * sign / (1 + np.exp(z)) * live / norm  # dL/d overall
        grad = np.zeros_like(p)
        i = 0
        rule_off = len(p) - 1 - len(self.weights.rules)
        for d in DIMENSIONS:
            k = len(self.names[d])
            inside = ((raw[d] > 1.0) & (raw[d] < np.minimum(5.0, self.cap[d]))).astype(float) \
                * self.r
            g_d = g_over * inside * dw.get(d, 0.0) / total
            grad[i] = g_d.sum()
            grad[i + 1:i + 1 + k] = self.x[d].T @ g_d
            i += 1 + k
            for j, r in enumerate(self.weights.rules):
                if r.dimension == d:
                    grad[rule_off + j] = self.m[:, j] @ g_d
        grad[-1] = -g_over.sum()
        return loss, grad


#: Features that measure length alone (their weights are what ``length_cap`` bounds).
LENGTH_FEATURES = frozenset({"length_log", "length_fit", "too_short", "too_long",
                             "short_as_asked", *(f"len_rel_{i}" for i in range(9))})


def fit_weights(weights: JudgeWeights, examples: Sequence[Example], steps: int = 60,
                lr: float = 0.02, l2: float = 0.002, length_cap: float | None = None
                ) -> float:
    """Adam steps on the logistic loss (in place); returns the final loss.

    ``l2`` pulls every number towards its value before this call (a trust region per round);
    ``length_cap`` bounds the weight of every length feature to ±cap after each step, so
    length alone can move a dimension by at most that much (labelled data that prefers longer
    answers cannot turn the judge into a length meter).
    """
    if not examples or steps <= 0:
        return float("nan")
    scorer = Scorer(weights, examples)
    p = scorer.params()
    bounded = np.zeros(len(p), dtype=bool)
    if length_cap is not None:
        i = 0
        for d in DIMENSIONS:
            i += 1
            for f in scorer.names[d]:
                bounded[i] = f in LENGTH_FEATURES
                i += 1
        p[bounded] = np.clip(p[bounded], -length_cap, length_cap)
    anchor_p = p.copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    loss = float("nan")
    for t in range(1, steps + 1):
        loss, g = scorer.loss_grad(p)
        g = g + l2 * (p - anchor_p)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p = p - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        if length_cap is not None:
            p[bounded] = np.clip(p[bounded], -length_cap, length_cap)
    scorer.set_params(p)
    return loss


@dataclass
class PhraseStats:
    """Good/bad counts of every candidate phrase over a labelled pool (built once)."""

    good: Counter[str]
    bad: Counter[str]
    n_good: int
    n_bad: int

    @classmethod
    def of(cls, examples: Sequence[Example]) -> PhraseStats:
        good: Counter[str] = Counter()
        bad: Counter[str] = Counter()
        for ex in examples:
            (good if ex.label else bad).update(phrases_of(ex.features.response))
        n_good = sum(ex.label for ex in examples)
        return cls(good, bad, n_good, len(examples) - n_good)

    def log_odds(self, phrase: str) -> float:
        g, b = self.good[phrase], self.bad[phrase]
        return math.log((g + 1) / (b + 1)) - math.log((self.n_good + 1) / (self.n_bad + 1))


def _covered(phrase: str, taken: Sequence[str]) -> bool:
    return any(phrase in t or t in phrase for t in taken)


def mine_rules(weights: JudgeWeights, reflected: Sequence[str], stats: PhraseStats,
               max_rules: int, round_no: int, group_size: int = 8, min_support: int = 8
               ) -> list[PhraseRule]:
    """Add up to two phrase-group rules mined from the reflected greetings (in place).

    Returns the rules added (the detector's rule diff); rules removed to respect
    ``max_rules`` are the weakest by |weight| × evidence.
    """
    existing = [p for r in weights.rules for p in r.pattern.split("|")]
    seen: Counter[str] = Counter()
    for text in reflected:
        seen.update(phrases_of(text))
    scored = []
    for phrase, hits in seen.items():
        support = stats.good[phrase] + stats.bad[phrase]
        if support < min_support or _covered(phrase, existing):
            continue
        lo = stats.log_odds(phrase)
        if abs(lo) < 1.0:
            continue
        scored.append((abs(lo) * math.sqrt(support) * math.log1p(hits), phrase, lo))
    scored.sort(reverse=True)
    added: list[PhraseRule] = []
    for sign, word in ((-1, "警示"), (1, "加分")):
        group: list[str] = []
        for _, phrase, lo in scored:
            if (lo > 0) == (sign > 0) and not _covered(phrase, group):
                group.append(phrase)
            if len(group) >= group_size:
                break
        if not group:
            continue
        g = sum(stats.good[p] for p in group)
        b = sum(stats.bad[p] for p in group)
        mean_lo = sum(stats.log_odds(p) for p in group) / len(group)
        dim = "creativity" if sign < 0 else ("creativity", "emotional_resonance")[round_no % 2]
        rule = PhraseRule(
            pattern="|".join(re.escape(p) for p in group), dimension=dim,
            weight=round(0.15 * mean_lo, 4), regex=True,
            note=f"r{round_no}{word}：{'、'.join(group[:3])}等（训练集含该短语：好{g}/差{b}）")
        added.append(rule)
    kept: list[PhraseRule] = []
    for rule in added:
        if len(weights.rules) >= max_rules:
            weakest = min(weights.rules, key=_strength)
            if _strength(weakest) >= _strength(rule):
                continue
            weights.rules.remove(weakest)
        weights.rules.append(rule)
        kept.append(rule)
    return kept


def _strength(rule: PhraseRule) -> float:
    m = re.search(r"好(\d+)/差(\d+)", rule.note)
    support = int(m.group(1)) + int(m.group(2)) if m else 1
    return abs(rule.weight) * math.sqrt(support)


def review_vetoes(weights: JudgeWeights, examples: Sequence[Example]) -> list[str]:
    """Switch off vetoes that fire on more good than bad examples; returns the changes."""
    changes = []
    for feat, limit in list(weights.veto.items()):
        if limit >= VETO_OFF or feat in PRINCIPLE_VETOES:
            continue
        fired = [ex.label for ex in examples if ex.features.values.get(feat, 0.0) >= limit]
        good, bad = sum(fired), len(fired) - sum(fired)
        if good > bad and good >= 3:
            weights.veto[feat] = VETO_OFF
            changes.append(f"veto {feat} off (fired on {good} good / {bad} bad)")
    return changes
