"""The ledger as one worker uses it: the writer it feeds, the reader the dashboard asks.

Without a ledger (``[server] ledger = false``) the worker keeps its last requests in memory,
so the dashboard still lists them (this worker's only, and gone at a restart).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.ops.ledger.reader import LedgerReader, RecentInMemory
from gateway.ops.ledger.writer import LedgerWriter

if TYPE_CHECKING:
    from gateway.proxy.exchange import Exchange

__all__ = ["CACHE_S", "WorkerLedger"]

CACHE_S = 1.0  # several open pages poll; one read per second serves them all


class WorkerLedger:
    """Start with ``start()``, feed ``listener`` with exchanges, ask ``view()``, end with ``stop()``."""

    def __init__(self, path: Path | None, retention_days: Callable[[], int]) -> None:
        self.path = path
        self._writer = LedgerWriter(path, retention_days=retention_days) if path is not None else None
        self._reader = LedgerReader(path) if path is not None else None
        self._memory = RecentInMemory() if path is None else None
        self._cached: tuple[float, int, dict[str, Any]] | None = None

    @property
    def listener(self) -> Callable[[Exchange], None]:
        """The exchange listener: the writer's queue, or the in-memory list."""
        if self._writer is not None:
            return self._writer
        assert self._memory is not None
        return self._memory

    def start(self) -> None:
        if self._writer is not None:
            self._writer.start()

    def stop(self) -> None:
        if self._writer is not None:
            self._writer.stop()
        if self._reader is not None:
            self._reader.close()

    def status(self) -> dict[str, Any]:
        """The writer's status (``state`` ``off`` without a ledger)."""
        if self._writer is None:
            return {"path": None, "state": "off", "error": None, "written": 0, "dropped": 0}
        return self._writer.status()

    async def view(self, tz_minutes: int) -> dict[str, Any]:
        """``{"recent", "charts"}`` (or ``{"error"}``), read in a thread, at most once a second."""
        now = time.time()
        cached = self._cached
        if cached is not None and now - cached[0] < CACHE_S and cached[1] == tz_minutes:
            return cached[2]
        if self._reader is None:
            assert self._memory is not None
            view: dict[str, Any] = {"recent": self._memory.read(), "charts": None}
        else:
            view = await asyncio.to_thread(self._reader.read, now, tz_minutes)
        self._cached = (now, tz_minutes, view)
        return view
