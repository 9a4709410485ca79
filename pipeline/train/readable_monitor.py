"""A reward-hacking monitor for GRPO: how many of the completions a step scored can be read.

A policy optimised against a learned reward finds the reward's holes: punctuation soup, one
character over and over, the query parroted back. The rewards say all is well; a reader
would not. :func:`monitored` wraps the first reward function of a GRPO run so that, for the
completions that reward is already scoring, the shared readability check
(:func:`zhufu.pipeline.evaluation.readable.readable_share`) runs in a worker thread while the
reward computes (no extra generation, nothing added to the step's critical path). The share
goes to TRL's ``log_metric``: TRL averages it over the logging step and logs it as
``readable_share`` with its own metrics, so it reaches MLflow (``train/readable_share``) at
every logging step. In the same thread it measures the wrong-occasion share of those
completions (:func:`zhufu.pipeline.evaluation.occasion.wrong_occasion_share`: among
completions whose query names an occasion, the share naming another one), logged as
``wrong_occasion_share``: whether GRPO is teaching the policy to answer the occasion asked.

:class:`ReadableMonitor` keeps the first share as the baseline and warns (``logging``,
level WARNING) when a share falls more than ``drop`` below it, again each time it falls a
further ``drop``; the run's result carries the first, last and lowest shares and the number
of warnings.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from zhufu.pipeline.evaluation.occasion import wrong_occasion_share
from zhufu.pipeline.evaluation.readable import readable_share
from zhufu.pipeline.rewards.rm import message_text

log = logging.getLogger(__name__)


class ReadableMonitor:
    """Records the readable share of each scored batch and warns when it falls."""

    def __init__(self, drop: float = 0.1) -> None:
        if not 0 < drop < 1:
            raise ValueError(f"drop must be in (0, 1), got {drop}")
        self.drop = drop
        self.shares: list[float] = []
        self.warnings: list[str] = []
        #: Wrong-occasion share of each batch that had a query naming an occasion.
        self.wrong_occasion: list[float] = []
        self._warn_below: float | None = None
        self._lock = threading.Lock()

    def record(self, share: float, step: int | None = None, warn: bool = True) -> str | None:
        """Add one batch's share; return (and log) a warning when it fell past the next
        threshold below the first share, else ``None``. ``warn=False`` records only (the
        other ranks of a multi-process run)."""
        with self._lock:
            self.shares.append(share)
            if self._warn_below is None:
                self._warn_below = share - self.drop
                return None
            if not warn or share >= self._warn_below:
                return None
            message = (f"readable share of GRPO completions fell to {share:.2f} (first batch "
                       f"{self.shares[0]:.2f}){'' if step is None else f' at step {step}'}: "
                       "the policy may be exploiting the reward; read its samples")
            while share < self._warn_below:
                self._warn_below -= self.drop
            self.warnings.append(message)
        log.warning(message)
        return message

    def record_wrong_occasion(self, share: float) -> None:
        """Add one batch's wrong-occasion share."""
        with self._lock:
            self.wrong_occasion.append(share)

    def metrics(self) -> dict[str, float]:
        """First, last and lowest readable share and the number of warnings; the mean
        wrong-occasion share of the first and of the last quarter of the batches (at least
        one batch each); empty before any batch."""
        if not self.shares:
            return {}
        out = {"readable_share/first": self.shares[0], "readable_share/last": self.shares[-1],
               "readable_share/min": min(self.shares),
               "readable_share/warnings": float(len(self.warnings))}
        wrong = self.wrong_occasion
        if wrong:
            k = max(1, len(wrong) // 4)
            out |= {"wrong_occasion_share/first": sum(wrong[:k]) / k,
                    "wrong_occasion_share/last": sum(wrong[-k:]) / k}
        return out


def _shares(texts: list[str], queries: list[str]) -> tuple[float, tuple[float, int]]:
    """(readable share, (wrong-occasion share, completions counted)) of one batch."""
    return readable_share(texts, queries), wrong_occasion_share(queries, texts)


def monitored(reward: Callable[..., Any], monitor: ReadableMonitor) -> Callable[..., Any]:
    """``reward`` (a TRL reward function, sync or async) that also measures the readable
    share of the completions it scores (see the module docstring). The result is async."""

    async def wrapper(prompts: Sequence[Any], completions: Sequence[Any], **kw: Any
                      ) -> list[float | None]:
        queries = [str(q) for q in kw.get("query") or [message_text(p) for p in prompts]]
        texts = [message_text(c) for c in completions]
        check = asyncio.ensure_future(asyncio.to_thread(_shares, texts, queries))
        try:
            out = reward(prompts, completions, **kw)
            values = await out if inspect.isawaitable(out) else out
        finally:
            share, (wrong, counted) = await check
        state = kw.get("trainer_state")
        monitor.record(share, getattr(state, "global_step", None),
                       warn=getattr(state, "is_world_process_zero", True))
        if counted:
            monitor.record_wrong_occasion(wrong)
        log_metric = kw.get("log_metric")
        if log_metric is not None:
            log_metric("readable_share", share)
            if counted:
                log_metric("wrong_occasion_share", wrong)
        return values

    wrapper.__name__ = getattr(reward, "__name__", "reward")
    wrapper.__doc__ = reward.__doc__
    return wrapper
