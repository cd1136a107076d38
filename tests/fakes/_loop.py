"""An asyncio event loop running in a daemon thread, driven from synchronous test code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Own an event loop in a background thread so servers keep running while a test blocks.

    The synchronous SDK client blocks the test thread; the fake servers must keep answering,
    so they live on this loop instead of the test's.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call_soon(self, fn: Callable[..., object], *args: object) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        if not self._thread.is_alive():
            self.loop.close()
            return
        # Cancel what is left (idle keep-alive handlers, hung responses) so closing the loop
        # does not leave "Task was destroyed but it is pending" noise in other tests' output.
        try:
            self.run(_cancel_other_tasks(), timeout=5.0)
        except Exception:  # a stuck task must not keep the loop alive: stop it anyway
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10.0)
        self.loop.close()


async def _cancel_other_tasks() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
