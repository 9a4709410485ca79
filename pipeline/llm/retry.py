"""Retry timing: exponential backoff with full jitter, and ``Retry-After`` read and capped.

Full jitter (a uniform draw in ``[0, min(cap, base * 2**attempt)]``) spreads the retries of
many concurrent callers, so a server that answered 429 to a burst is not hit by the same
burst again a fixed delay later.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait. ``max_retries`` retries means at most ``1 + max_retries``
    attempts, never more."""

    max_retries: int = 4
    base_s: float = 0.5
    max_backoff_s: float = 20.0
    retry_after_cap_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.base_s < 0 or self.max_backoff_s < 0 or self.retry_after_cap_s < 0:
            raise ValueError("retry delays must be >= 0")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
        ceiling = min(self.max_backoff_s, self.base_s * (2.0 ** min(attempt, 30)))
        return self.rng.uniform(0.0, ceiling)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The server's ``Retry-After`` when it gave one (capped), else :meth:`backoff`."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap_s)
        return self.backoff(attempt)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if unusable.

    >>> parse_retry_after("2")
    2.0
    >>> parse_retry_after("0.25")
    0.25
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    >>> parse_retry_after("soon") is None
    True
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(seconds, 0.0)
