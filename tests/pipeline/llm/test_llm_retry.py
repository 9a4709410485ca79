"""Backoff timing: full jitter inside an exponentially growing ceiling, capped; Retry-After
wins when given and is capped too; bad settings are refused."""

from __future__ import annotations

import random

import pytest

from zhufu.pipeline.llm.retry import RetryPolicy, parse_retry_after


def test_full_jitter_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_s=0.1, max_backoff_s=1.0, rng=random.Random(0))
    for attempt, ceiling in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (40, 1.0)]:
        draws = [policy.backoff(attempt) for _ in range(400)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > 0.8 * ceiling and min(draws) < 0.2 * ceiling  # spread, not fixed


def test_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(base_s=10, retry_after_cap_s=2.0)
    assert policy.delay(0, retry_after=0.5) == 0.5
    assert policy.delay(5, retry_after=3600) == 2.0
    assert policy.delay(0, retry_after=-3) == 0.0


def test_retry_after_forms() -> None:
    assert parse_retry_after(" 3 ") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0
    for bad in (None, "", "nan", "inf", "later", "Mon, 99 Foo 2015"):
        assert parse_retry_after(bad) is None


@pytest.mark.parametrize("kw", [{"max_retries": -1}, {"base_s": -1}, {"retry_after_cap_s": -1}])
def test_bad_policy(kw: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kw)
