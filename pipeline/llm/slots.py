"""A backend's call slots: at most ``size`` calls at once, the waiting ones served by priority.

``asyncio.Semaphore`` serves its waiters in arrival order. A curation run's candidates are
chains of calls (the debate, then the judge, then the reflect agent), and with every slot
busy, arrival order makes the run's last candidates queue behind the final steps of all
the others, so the run ends with a stretch of half-empty slots while those chains finish.
Serving the calls with the most steps still to go first (Hu's rule for chains) keeps the
slots full until the work runs out: at concurrency 64 against a 50 ms stand-in server, the
stretch after the slots stop being full went from ~210 ms to ~110-150 ms (``bench/README.md``).
With one priority for all, :class:`Slots` behaves as the semaphore it replaces.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class Slots:
    """At most ``size`` holders at once. :meth:`acquire` waits while all are taken; a freed
    slot goes to the waiter of highest ``priority``, in arrival order within one priority
    (a newcomer never takes a slot ahead of a waiter). Bound to the running event loop.

    >>> async def demo() -> list[str]:
    ...     slots, order = Slots(1), []
    ...     await slots.acquire()
    ...     async def call(name: str, priority: int) -> None:
    ...         await slots.acquire(priority)
    ...         order.append(name)
    ...         slots.release()
    ...     waiting = [asyncio.create_task(call(n, p)) for n, p in
    ...                [("reflect", 1), ("debate", 3), ("judge", 2), ("debate 2", 3)]]
    ...     await asyncio.sleep(0)
    ...     slots.release()
    ...     await asyncio.gather(*waiting)
    ...     return order
    >>> asyncio.run(demo())
    ['debate', 'debate 2', 'judge', 'reflect']
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self._free = size
        # (-priority, arrival, future); a cancelled waiter's entry stays until it is popped
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @property
    def in_use(self) -> int:
        """Slots held now."""
        return self.size - self._free

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot now."""
        return sum(1 for *_, future in self._waiters if not future.done())

    async def acquire(self, priority: int = 0) -> None:
        """Take a slot, waiting for one while all are held (higher ``priority`` first)."""
        if self._free:  # a waiter is only ever queued while no slot is free
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, next(self._arrivals), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # handed a slot, then cancelled
                self.release()
            raise

    def release(self) -> None:
        """Give the slot back: to the first waiter in priority order, else to the pool."""
        while self._waiters:
            future = heapq.heappop(self._waiters)[2]
            if not future.done():
                future.set_result(None)
                return
        if self._free == self.size:
            raise ValueError("Slots.release() called more often than acquire()")
        self._free += 1
