"""``max_concurrent``: at most N requests in flight to a provider, a bounded queue behind them.

Beyond the queue the gateway answers 529 overloaded_error itself (a fallback target, if the
route has one, is tried first). Per worker: with ``--workers N`` a provider sees up to
N x max_concurrent requests.
"""

from __future__ import annotations

import asyncio
from collections import deque

from gateway.errors import Overloaded
from rules.model import Provider

__all__ = ["Limits", "ProviderLimit"]


class ProviderLimit:
    """A FIFO semaphore with a bounded wait queue for one provider."""

    __slots__ = ("limit", "queue_limit", "in_flight", "_waiters")

    def __init__(self, limit: int, queue_limit: int) -> None:
        self.limit = limit
        self.queue_limit = queue_limit
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, provider: str) -> None:
        """Take a slot, waiting in the queue if needed; Overloaded when the queue is full too."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        if len(self._waiters) >= self.queue_limit:
            raise Overloaded(
                f"provider '{provider}' is at its max_concurrent limit ({self.limit} in flight, "
                f"{len(self._waiters)} waiting); try again shortly or raise max_concurrent / max_queue"
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # release() hands its slot over: in_flight already counts us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot arrived as we were cancelled: pass it on
            else:
                # A release() between the cancel and this line may have taken the waiter off
                # the queue already (it skips cancelled ones): removing it again would raise.
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # hand the slot over; in_flight stays the same
                return
        self.in_flight -= 1


class Limits:
    """The ProviderLimit of each provider that has ``max_concurrent``, following config reloads."""

    def __init__(self) -> None:
        self._limits: dict[str, ProviderLimit] = {}

    def for_provider(self, provider: Provider) -> ProviderLimit | None:
        if provider.max_concurrent is None:
            return None
        queue = provider.max_queue if provider.max_queue is not None else 4 * provider.max_concurrent
        current = self._limits.get(provider.name)
        if current is None or current.limit != provider.max_concurrent or current.queue_limit != queue:
            # A changed limit starts a new gate; requests holding the old one release it there.
            current = ProviderLimit(provider.max_concurrent, queue)
            self._limits[provider.name] = current
        return current

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {
            name: {"in_flight": lim.in_flight, "waiting": len(lim._waiters), "max_concurrent": lim.limit}
            for name, lim in self._limits.items()
        }
