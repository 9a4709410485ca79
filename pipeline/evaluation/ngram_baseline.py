"""A character n-gram TF-IDF logistic-regression baseline for preference pairs.

The reward model is compared against this: if a bag of character n-grams already ranks the
chosen answer above the rejected one, a neural reward model has to do at least as well to be
worth its cost.

How it is trained (``mode="pairwise"``, the default): each training pair gives the
difference of TF-IDF vectors ``x(chosen) - x(rejected)`` with label 1 and its negation with
label 0; a logistic regression without intercept fits these (a linear Bradley-Terry model).
The score of one response is ``w · x(response)``, so pairs compare exactly as the reward model
does: the higher score wins. ``mode="pointwise"`` instead classifies single responses
(chosen = 1, rejected = 0) and scores with the decision function. The vectoriser sees the
response only (the query is shared by both sides of a pair and cancels out pairwise).
Chinese has no spaces, so n-grams are over characters (``analyzer="char"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

Mode = Literal["pairwise", "pointwise"]


@dataclass
class NgramBaseline:
    """A fitted vectoriser + linear model; :meth:`score` gives one float per response."""

    vectorizer: TfidfVectorizer
    model: LogisticRegression
    mode: Mode

    def score(self, responses: Sequence[str]) -> np.ndarray:
        """Linear score of each response; a higher score means "more likely chosen"."""
        x = self.vectorizer.transform(list(responses))
        return np.asarray(self.model.decision_function(x), dtype=float)

    def prefers_first(self, first: Sequence[str], second: Sequence[str]) -> np.ndarray:
        """Boolean array: does ``first[i]`` score strictly higher than ``second[i]``?"""
        if len(first) != len(second):
            raise ValueError(f"prefers_first: {len(first)} vs {len(second)} responses")
        return self.score(first) > self.score(second)

    def as_pipeline(self) -> Pipeline:
        """The same model as a scikit-learn pipeline (handy for logging or pickling)."""
        return Pipeline([("tfidf", self.vectorizer), ("lr", self.model)])


def fit_ngram_baseline(
    chosen: Sequence[str],
    rejected: Sequence[str],
    *,
    ngram_range: tuple[int, int] = (1, 3),
    c: float = 10.0,
    mode: Mode = "pairwise",
    max_features: int | None = 200_000,
    seed: int = 0,
) -> NgramBaseline:
    """Fit the baseline on training pairs (``chosen[i]`` preferred over ``rejected[i]``).

    ``c`` is the inverse regularisation strength of the logistic regression; ``ngram_range``
    the character n-gram sizes. The TF-IDF vocabulary is fitted on both sides of the training
    pairs only, never on held-out text.
    """
    if len(chosen) != len(rejected):
        raise ValueError(f"fit_ngram_baseline: {len(chosen)} chosen vs {len(rejected)} rejected")
    if not chosen:
        raise ValueError("fit_ngram_baseline: no training pairs")
    vectorizer = TfidfVectorizer(
        analyzer="char", ngram_range=ngram_range, sublinear_tf=True, max_features=max_features
    )
    vectorizer.fit(list(chosen) + list(rejected))
    xc = vectorizer.transform(list(chosen))
    xr = vectorizer.transform(list(rejected))
    n = len(chosen)
    if mode == "pairwise":
        from scipy.sparse import vstack

        diff = xc - xr
        x = vstack([diff, -diff]).tocsr()
        y = np.concatenate([np.ones(n), np.zeros(n)])
        model = LogisticRegression(C=c, fit_intercept=False, max_iter=2000, random_state=seed)
    elif mode == "pointwise":
        from scipy.sparse import vstack

        x = vstack([xc, xr]).tocsr()
        y = np.concatenate([np.ones(n), np.zeros(n)])
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    else:
        raise ValueError(f"fit_ngram_baseline: unknown mode {mode!r} (pairwise or pointwise)")
    model.fit(x, y)
    return NgramBaseline(vectorizer=vectorizer, model=model, mode=mode)
