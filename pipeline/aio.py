"""Run the pipeline's asyncio work on uvloop where it is installed.

Curation, judging and evaluation send hundreds of LLM calls at once through aiohttp; at high
concurrency the event loop and its socket transports are most of the process's CPU. uvloop
(libuv underneath) does that part in C, as Kopf does for the operator when it is installed.
The project depends on it on Linux and macOS; elsewhere, or with ``ZHUFU_EVENT_LOOP=asyncio``
(a library that misbehaves on uvloop, or to measure against the standard loop), :func:`run`
is :func:`asyncio.run`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: Environment variable that picks the loop: ``uvloop`` (the default when installed) or
#: ``asyncio``.
LOOP_ENV = "ZHUFU_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the loop :func:`run` uses; ``None`` means the standard loop.

    Raises :class:`ValueError` when ``ZHUFU_EVENT_LOOP`` names neither loop, and
    :class:`ImportError` when it asks for uvloop and uvloop is not installed.
    """
    choice = os.environ.get(LOOP_ENV, "").strip().lower()
    if choice not in ("", "uvloop", "asyncio"):
        raise ValueError(f"{LOOP_ENV}={choice!r}: expected 'uvloop' or 'asyncio'")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ImportError(f"{LOOP_ENV}=uvloop, but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: the loop :func:`run` would use now (benches print it)."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a new event loop until it completes, as :func:`asyncio.run` does (the
    loop is closed after, async generators finalised), on uvloop when it is available."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
