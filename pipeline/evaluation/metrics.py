"""Agreement metrics, with the length baselines beside them.

A greeting judge on the paper's data can look good by preferring longer text (chosen answers
average ~62 characters, rejected ~30). Every figure here therefore comes with what a pure
length rule achieves on the same rows: the best single length threshold, accuracy per length
band, "longer wins" on pairs, and accuracy on pairs of near-same length.

>>> accuracy([1, 0, 1, 1], [1, 0, 0, 1])
0.75
>>> round(cohen_kappa([1, 0, 1, 1], [1, 0, 0, 1]), 4)
0.5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Length bands (characters, half-open) used in every report.
BANDS: tuple[tuple[str, int, float], ...] = (
    ("<30", 0, 30), ("30-50", 30, 50), ("50-80", 50, 80), (">=80", 80, float("inf")))
#: Two answers are "near-same length" when their lengths differ by at most this share of the
#: longer one.
NEAR_SAME_LENGTH = 0.15


def _check(a: Sequence[object], b: Sequence[object]) -> None:
    if len(a) != len(b):
        raise ValueError(f"length mismatch: {len(a)} vs {len(b)}")


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Share of positions where the two label lists agree (nan on empty input)."""
    _check(y_true, y_pred)
    if not y_true:
        return float("nan")
    return sum(int(t) == int(p) for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


def cohen_kappa(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Cohen's kappa of two binary raters: (p_o - p_e) / (1 - p_e); 0 when p_e == 1."""
    _check(y_true, y_pred)
    n = len(y_true)
    if n == 0:
        return float("nan")
    po = accuracy(y_true, y_pred)
    t1 = sum(int(t) for t in y_true) / n
    p1 = sum(int(p) for p in y_pred) / n
    pe = t1 * p1 + (1 - t1) * (1 - p1)
    return 0.0 if pe >= 1 else (po - pe) / (1 - pe)


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve = P(score of a random good > score of a random bad), ties ½."""
    _check(scores, labels)
    ranked = sorted(zip(scores, labels, strict=True), key=lambda t: t[0])
    n_pos = sum(1 for _, y in ranked if y)
    n_neg = len(ranked) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        avg_rank = (i + j + 1) / 2  # 1-based average rank of the tie group
        rank_sum += avg_rank * sum(1 for _, y in ranked[i:j] if y)
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@dataclass(frozen=True)
class LengthRule:
    """``label = 1`` iff ``length >= threshold`` (direction ``longer``) or ``< threshold``."""

    threshold: int
    direction: str  # "longer" | "shorter"
    accuracy: float

    def predict(self, lengths: Sequence[int]) -> list[int]:
        if self.direction == "longer":
            return [int(n >= self.threshold) for n in lengths]
        return [int(n < self.threshold) for n in lengths]


def best_length_rule(lengths: Sequence[int], labels: Sequence[int]) -> LengthRule:
    """The single length threshold that best separates the labels (fitted on these rows)."""
    _check(lengths, labels)
    if not lengths:
        return LengthRule(0, "longer", float("nan"))
    n = len(lengths)
    pos_total = sum(int(y) for y in labels)
    order = sorted(zip(lengths, labels, strict=True))
    # Sweep thresholds between distinct lengths; "longer" predicts 1 for length >= t.
    best = LengthRule(order[0][0], "longer", pos_total / n)
    below_pos = below = 0
    i = 0
    while i <= n:
        t = order[i][0] if i < n else order[-1][0] + 1
        neg_above = (n - below) - (pos_total - below_pos)
        acc_longer = ((pos_total - below_pos) + (below - below_pos)) / n
        acc_shorter = (below_pos + neg_above) / n
        if acc_longer > best.accuracy:
            best = LengthRule(t, "longer", acc_longer)
        if acc_shorter > best.accuracy:
            best = LengthRule(t, "shorter", acc_shorter)
        if i == n:
            break
        j = i
        while j < n and order[j][0] == t:
            below_pos += int(order[j][1])
            below += 1
            j += 1
        i = j
    return best


def band_of(length: int) -> str:
    for name, lo, hi in BANDS:
        if lo <= length < hi:
            return name
    return BANDS[-1][0]


def band_accuracy(lengths: Sequence[int], y_true: Sequence[int],
                  y_pred: Sequence[int]) -> dict[str, dict[str, float]]:
    """Per length band: ``n`` and ``accuracy`` of ``y_pred`` (bands with no rows omitted)."""
    _check(lengths, y_true)
    _check(y_true, y_pred)
    out: dict[str, dict[str, float]] = {}
    for name, _, _ in BANDS:
        idx = [i for i, n in enumerate(lengths) if band_of(n) == name]
        if idx:
            out[name] = {"n": len(idx),
                         "accuracy": accuracy([y_true[i] for i in idx], [y_pred[i] for i in idx])}
    return out


def pair_accuracy(chosen: Sequence[float], rejected: Sequence[float]) -> float:
    """Share of pairs where the chosen side scores higher; a tie counts one half."""
    _check(chosen, rejected)
    if not chosen:
        return float("nan")
    won = sum(1.0 if c > r else 0.5 if c == r else 0.0
              for c, r in zip(chosen, rejected, strict=True))
    return won / len(chosen)


def near_same_length(chosen_len: Sequence[int], rejected_len: Sequence[int],
                     tolerance: float = NEAR_SAME_LENGTH) -> list[bool]:
    """Mask of pairs whose lengths differ by at most ``tolerance`` × the longer one."""
    _check(chosen_len, rejected_len)
    return [abs(c - r) <= tolerance * max(c, r) for c, r in zip(chosen_len, rejected_len,
                                                               strict=True)]
