"""A backend's call slots: at most ``size`` at once, waiters served by priority, then in
arrival order; cancellation never loses a slot."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from zhufu.pipeline.llm import ChatBackend, ChatRequest, ChatResponse
from zhufu.pipeline.llm.slots import Slots


async def _served(slots: Slots, asks: list[tuple[str, int]]) -> list[str]:
    """Hold every slot, queue ``asks`` (name, priority), free the slots: the serving order."""
    order: list[str] = []
    for _ in range(slots.size):
        await slots.acquire()

    async def ask(name: str, priority: int) -> None:
        await slots.acquire(priority)
        order.append(name)
        await asyncio.sleep(0)
        slots.release()

    tasks = [asyncio.create_task(ask(name, priority)) for name, priority in asks]
    await asyncio.sleep(0)
    assert slots.waiting == len(asks) and slots.in_use == slots.size
    for _ in range(slots.size):
        slots.release()
    await asyncio.gather(*tasks)
    assert slots.in_use == 0 and slots.waiting == 0
    return order


def test_one_priority_is_arrival_order() -> None:
    asks = [(f"call {i}", 0) for i in range(6)]
    assert asyncio.run(_served(Slots(2), asks)) == [name for name, _ in asks]


def test_higher_priority_first_then_arrival_order() -> None:
    asks = [("reflect a", 1), ("debate a", 3), ("judge a", 2), ("reflect b", 1),
            ("debate b", 3), ("judge b", 2)]
    assert asyncio.run(_served(Slots(1), asks)) == [
        "debate a", "debate b", "judge a", "judge b", "reflect a", "reflect b"]


def test_never_more_holders_than_slots() -> None:
    async def main() -> int:
        slots, holding, most = Slots(3), [0], [0]

        async def call(priority: int) -> None:
            await slots.acquire(priority)
            holding[0] += 1
            most[0] = max(most[0], holding[0])
            await asyncio.sleep(0.001 * (priority % 3))
            holding[0] -= 1
            slots.release()

        await asyncio.gather(*(call(i % 5) for i in range(40)))
        return most[0]

    assert asyncio.run(main()) == 3


def test_a_cancelled_waiter_loses_no_slot() -> None:
    async def main() -> list[str]:
        slots, order = Slots(1), []
        await slots.acquire()

        async def ask(name: str, priority: int) -> None:
            await slots.acquire(priority)
            order.append(name)
            slots.release()

        first = asyncio.create_task(ask("cancelled", 5))
        second = asyncio.create_task(ask("served", 1))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        assert slots.waiting == 1
        slots.release()
        await second
        assert first.cancelled() and slots.in_use == 0
        return order

    assert asyncio.run(main()) == ["served"]


def test_a_waiter_cancelled_after_its_slot_came_passes_the_slot_on() -> None:
    async def main() -> list[str]:
        slots, order = Slots(1), []
        await slots.acquire()

        async def ask(name: str) -> None:
            await slots.acquire()
            order.append(name)
            slots.release()

        first, second = asyncio.create_task(ask("first")), asyncio.create_task(ask("second"))
        await asyncio.sleep(0)
        slots.release()  # the slot goes to `first`, which has not run yet
        first.cancel()  # ... and is cancelled before it does
        await asyncio.gather(first, second, return_exceptions=True)
        assert slots.in_use == 0
        return order

    assert asyncio.run(main()) == ["second"]


def test_releasing_more_than_acquired_is_an_error() -> None:
    with pytest.raises(ValueError, match="more often than acquire"):
        Slots(2).release()
    with pytest.raises(ValueError, match="size must be >= 1"):
        Slots(0)


class GatedBackend(ChatBackend):
    """Answers each request once ``gate`` opens, recording the order the calls ran in."""

    name = "gated"

    def __init__(self) -> None:
        super().__init__(concurrency=1)
        self.ran: list[str] = []
        self.gate = asyncio.Event()

    async def _chat(self, request: ChatRequest) -> ChatResponse:
        text = request.messages[0]["content"]
        self.ran.append(text)
        await self.gate.wait()
        return ChatResponse(text=text)


def test_backend_chat_serves_waiting_calls_by_priority() -> None:
    def ask(backend: GatedBackend, text: str, priority: int
            ) -> Callable[[], Awaitable[ChatResponse]]:
        request = ChatRequest(messages=[{"role": "user", "content": text}])
        return lambda: backend.chat(request, priority=priority)

    async def main() -> list[str]:
        backend = GatedBackend()
        calls = [ask(backend, "holds the slot", 0), ask(backend, "reflect", 1),
                 ask(backend, "debate", 3), ask(backend, "judge", 2)]
        tasks = [asyncio.create_task(call()) for call in calls]
        await asyncio.sleep(0.01)
        backend.gate.set()
        answers = await asyncio.gather(*tasks)
        assert [a.text for a in answers] == ["holds the slot", "reflect", "debate", "judge"]
        assert backend.stats.calls == 4
        return backend.ran

    assert asyncio.run(main()) == ["holds the slot", "debate", "judge", "reflect"]
