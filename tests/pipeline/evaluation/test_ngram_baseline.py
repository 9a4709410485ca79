"""The character n-gram TF-IDF logistic-regression baseline on small sets with a known answer."""

from __future__ import annotations

import random

import pytest

from zhufu.pipeline.evaluation.ngram_baseline import fit_ngram_baseline


def _pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Chosen answers carry 福/愿, rejected ones 坏/差; both sides share filler characters and
    have the same length, so only the marker characters separate them."""
    rng = random.Random(seed)
    filler = "生日快乐新年身体健康万事如意"
    chosen, rejected = [], []
    for _ in range(n):
        body = "".join(rng.choice(filler) for _ in range(8))
        chosen.append(body[:4] + rng.choice("福愿") + body[4:])
        rejected.append(body[:4] + rng.choice("坏差") + body[4:])
    return chosen, rejected


@pytest.mark.parametrize("mode", ["pairwise", "pointwise"])
def test_learns_the_marker_characters(mode: str) -> None:
    chosen, rejected = _pairs(60, seed=0)
    model = fit_ngram_baseline(chosen, rejected, mode=mode)
    test_c, test_r = _pairs(40, seed=1)
    assert model.prefers_first(test_c, test_r).all()
    assert not model.prefers_first(test_r, test_c).any()
    # The learned weights point the right way on the markers themselves.
    good, bad = model.score(["福"])[0], model.score(["坏"])[0]
    assert good > bad


def test_pairwise_model_has_no_intercept() -> None:
    chosen, rejected = _pairs(30, seed=2)
    model = fit_ngram_baseline(chosen, rejected)
    assert model.model.fit_intercept is False
    assert model.as_pipeline().steps[0][0] == "tfidf"


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="2 chosen vs 1 rejected"):
        fit_ngram_baseline(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="no training pairs"):
        fit_ngram_baseline([], [])
    with pytest.raises(ValueError, match="unknown mode"):
        fit_ngram_baseline(["好"], ["坏"], mode="both")  # type: ignore[arg-type]
    model = fit_ngram_baseline(["好好"], ["坏坏"])
    with pytest.raises(ValueError, match="1 vs 2"):
        model.prefers_first(["好"], ["坏", "坏"])
