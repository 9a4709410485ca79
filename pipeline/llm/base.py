"""The one async chat interface every agent and the judge use.

A :class:`ChatRequest` carries the chat ``messages`` an LLM reads and, beside them, the same
request in structured form (``task``): the offline principle analyser answers from ``task``,
LLM backends answer from ``messages``, and both reply in the output contract the prompt
states, so every agent runs the same code path with or without an LLM.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from zhufu.pipeline.errors import LLMError
from zhufu.pipeline.llm.slots import Slots

Message = dict[str, str]


@dataclass(frozen=True)
class ChatRequest:
    """One chat call. ``None`` sampling fields mean "the backend's configured default".

    ``seed`` tells apart requests that are otherwise identical (several samples of the same
    prompt): it is part of the cache key and is sent to servers that accept it.
    """

    messages: list[Message]
    task: dict[str, Any] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    json_output: bool = False
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class ChatResponse:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False


@dataclass
class CallStats:
    """Counters a backend keeps; logged to MLflow by the stages.

    A cache hit counts as a call and a hit, but adds no tokens or seconds: the counters say
    what was actually spent.
    """

    calls: int = 0
    failures: int = 0
    retries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    def record(self, response: ChatResponse) -> None:
        self.calls += 1
        if response.cached:
            self.cache_hits += 1
            return
        self.prompt_tokens += response.prompt_tokens
        self.completion_tokens += response.completion_tokens
        self.seconds += response.latency_s

    def record_failure(self, kind: str) -> None:
        self.calls += 1
        self.failures += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def as_metrics(self, prefix: str = "llm_") -> dict[str, float]:
        flat = {k: v for k, v in asdict(self).items() if k != "errors"}
        metrics = {f"{prefix}{k}": float(v) for k, v in flat.items()}
        metrics.update({f"{prefix}error_{k}": float(v) for k, v in self.errors.items()})
        return metrics


class ChatBackend(abc.ABC):
    """Subclasses implement :meth:`_chat`; callers use :meth:`chat` and :meth:`chat_many`.

    At most ``concurrency`` calls run :meth:`_chat` at once; while all slots are taken, calls
    wait their turn by ``priority`` (:class:`~zhufu.pipeline.llm.slots.Slots`). The slots
    belong to the event loop that first used them and are rebuilt when a later
    ``asyncio.run`` brings a new one.
    """

    name: str = "backend"
    #: Share of the items whose calls this backend's users trace to MLflow (0 = none; see
    #: :mod:`zhufu.pipeline.llm.tracing`); set from ``llm.trace_rate``.
    trace_rate: float = 0.0

    def __init__(self, concurrency: int = 16) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.concurrency = concurrency
        self.stats = CallStats()
        self._slots: Slots | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None

    @abc.abstractmethod
    async def _chat(self, request: ChatRequest) -> ChatResponse:
        """Answer one request or raise :class:`LLMError`."""

    def identity(self) -> dict[str, Any]:
        """What decides this backend's answers besides the request (for cache keys)."""
        return {"backend": self.name}

    def _loop_slots(self) -> Slots:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots = Slots(self.concurrency)
            self._slots_loop = loop
            self._on_new_loop(loop)
        return self._slots

    def _on_new_loop(self, loop: asyncio.AbstractEventLoop) -> None:  # noqa: B027 - a hook
        """Called when a call first runs on ``loop``: drop what belonged to the previous one."""

    async def chat(self, request: ChatRequest, *, priority: int = 0) -> ChatResponse:
        """The answer to ``request``; while all slots are taken, a call of higher ``priority``
        gets the next free one (callers with chains of calls pass the steps still to go)."""
        slots = self._loop_slots()
        await slots.acquire(priority)
        try:
            response = await self._chat(request)
        except LLMError as e:
            self.stats.record_failure(e.kind)
            raise
        finally:
            slots.release()
        self.stats.record(response)
        return response

    async def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatResponse | LLMError]:
        """All requests, at most ``concurrency`` in flight; a failure is returned, not raised."""

        async def one(request: ChatRequest) -> ChatResponse | LLMError:
            try:
                return await self.chat(request)
            except LLMError as e:
                return e

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def aclose(self) -> None:
        """Release connections; backends that hold none need not override."""
        return None

    async def __aenter__(self) -> ChatBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
