"""Recording every request in the ledger without making any request wait for it.

The exchange listener (``LedgerWriter.__call__``) runs on the event loop after the answer was
sent (``AfterResponse``): it turns the finished ``Exchange`` into its row (a tuple of plain
values), appends it to a deque and, every ``FLUSH_ROWS`` rows, wakes the writer thread.
Everything else happens in that thread: one ``BEGIN IMMEDIATE``, one INSERT, ``COMMIT`` per
batch (at least every ``FLUSH_INTERVAL_S``), and the upkeep: rows older than ``ledger_days``
deleted every hour, the oldest rows deleted while the file is over ``MAX_BYTES`` (checked
every minute).

A file that cannot be written (a full disk, a read-only directory, a path that is not a
directory) logs ONE warning and serving goes on: rows are dropped and counted until the file
can be written again (reopened every ``RETRY_S``), which is logged once too.

Cost, measured as the gateway's CPU time per request over 20,000 requests at concurrency 8
(tiny bodies, the 2-core project machine): with the ledger on, the event loop's thread spends
about 12 us more per request than with ``ledger = false``, and the writer thread 8 us. Two
choices got it there from +55 us: rows built at once rather than Exchanges queued (see
``_queue``), and few statements per batch (see ``insert_rows``), since made cheaper for the
writer thread by binding values instead of passing JSON (9.3 -> 2.7 us a row).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.ops.ledger.rows import row
from gateway.ops.ledger.store import COLUMNS, LedgerError, connect
from rules.model import DEFAULT_LEDGER_DAYS

if TYPE_CHECKING:
    from gateway.proxy.exchange import Exchange

__all__ = [
    "FLUSH_INTERVAL_S",
    "FLUSH_ROWS",
    "MAX_BYTES",
    "MAX_QUEUED",
    "RETRY_S",
    "LedgerWriter",
    "insert_rows",
]

log = logging.getLogger("gateway.ledger")

FLUSH_INTERVAL_S = 1.0
FLUSH_ROWS = 4096
MAX_QUEUED = 50_000  # rows waiting for the thread; beyond it (a stalled disk) they are dropped
MAX_BYTES = 256 * 1024 * 1024  # about a million rows
RETRY_S = 60.0
_RETENTION_EVERY_S = 3600.0
_SIZE_EVERY_S = 60.0
_DELETE_CHUNK = 5000  # rows per delete transaction: short, so other workers' batches wait little

# Rows go in as multi-row INSERTs of up to _CHUNK_ROWS rows each, their values bound directly:
# one bind and one step per chunk, so the thread takes the GIL back once per chunk (each time
# it does, the event loop must hand the GIL over), and SQLite parses no JSON. Measured on the
# project machine (4,096 typical rows per transaction, CPU time of the writer): one statement
# per row (executemany) 4.0 us a row, the whole batch as one JSON array unpacked by json_each
# 9.3 us, multi-row VALUES of 256 rows 2.7 us.
_CHUNK_ROWS = 256
_COLUMN_LIST = ", ".join(COLUMNS)
_ONE_ROW = "(" + ", ".join("?" * len(COLUMNS)) + ")"
_statements: dict[int, str] = {}


def _statement(rows: int) -> str:
    """The INSERT of ``rows`` rows; the full chunk's text is kept (the others are the rare last chunk)."""
    sql = _statements.get(rows)
    if sql is None:
        sql = f"INSERT INTO requests ({_COLUMN_LIST}) VALUES " + ", ".join([_ONE_ROW] * rows)
        if rows == _CHUNK_ROWS:
            _statements[rows] = sql
    return sql


def _chunk_rows(conn: sqlite3.Connection) -> int:
    """Rows per statement within SQLite's limit on bound values (999 before SQLite 3.32)."""
    getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
    limit = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit is not None else 999
    return max(1, min(_CHUNK_ROWS, limit // len(COLUMNS)))


def insert_rows(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """INSERT ``rows`` (``COLUMNS`` order), a few hundred per statement; the caller holds the transaction."""
    if not rows:
        return
    step = _chunk_rows(conn)
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        conn.execute(_statement(len(chunk)), [value for one in chunk for value in one])


class LedgerWriter:
    """The exchange listener that records each request, and the thread that writes them.

    ``retention_days``: read at every retention pass, so a reload of ``ledger_days`` applies.
    """

    def __init__(
        self,
        path: Path,
        *,
        retention_days: Callable[[], int] = lambda: DEFAULT_LEDGER_DAYS,
        max_bytes: int = MAX_BYTES,
        flush_rows: int = FLUSH_ROWS,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._retention_days = retention_days
        self._max_bytes = max_bytes
        self._flush_rows = flush_rows
        self._interval = flush_interval_s
        self._clock = clock
        # Rows, not Exchanges: an Exchange (its attempts, its strings) kept alive until the next
        # batch outlives a garbage collection or two and is then scanned by every older-generation
        # collection; queued that way the event loop's thread spent 24 us more CPU per request
        # than with the ledger off, against 12 us with the row (a tuple of plain values, ~2 us
        # to build) made here at once.
        self._queue: deque[tuple[Any, ...]] = deque()
        # time.time() - time.perf_counter(), refreshed by the thread at every batch.
        self._offset = time.time() - time.perf_counter()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        # Each counter is written by one thread only: no lock, no lost increments.
        self._dropped_queued = 0  # event loop: the queue was full
        self._dropped_written = 0  # writer thread: the batch could not be written
        self.written = 0
        self.failure: str | None = None  # what is wrong now; None while writing works

    # --- the event loop's side -------------------------------------------------------------

    def __call__(self, exchange: Exchange) -> None:
        queue = self._queue
        if len(queue) >= MAX_QUEUED:
            self._dropped_queued += 1
            return
        try:
            record = row(exchange, self._offset)
        except Exception:  # one odd record must not cost the others
            log.exception("ledger: cannot record request %s", exchange.request_id)
            self._dropped_queued += 1
            return
        queue.append(record)
        if len(queue) == self._flush_rows:
            self._wake.set()

    @property
    def dropped(self) -> int:
        """Requests not recorded: the queue was full, or the file could not be written."""
        return self._dropped_queued + self._dropped_written

    def status(self) -> dict[str, Any]:
        """For the dashboard: where, whether it works, how many rows this worker wrote and dropped."""
        return {
            "path": str(self.path),
            "state": "failing" if self.failure else "ok",
            "error": self.failure,
            "written": self.written,
            "dropped": self.dropped,
        }

    def start(self) -> None:
        """Open (or create) the file, start the thread. Never raises."""
        self._conn = self._open()
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued and end the thread."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the writer thread -------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection | None:
        try:
            conn = connect(self.path, create=True)
        except LedgerError as exc:
            self._failed(str(exc))
            return None
        return conn

    def _failed(self, message: str) -> None:
        if self.failure is None:
            log.warning(
                "ledger: %s; requests are still served but not recorded until it works again "
                "(tried again every %g s)", message, RETRY_S,
            )
        else:
            log.debug("ledger: %s", message)
        self.failure = message

    def _recovered(self) -> None:
        if self.failure is not None:
            log.warning("ledger: writing to %s again; %d requests were not recorded", self.path, self.dropped)
            self.failure = None

    def _run(self) -> None:
        now = self._clock()
        next_retention = now  # at start: a gateway stopped for a month has old rows to drop
        next_size = now
        next_open = now + RETRY_S
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            stopping = self._stopping
            batch = self._drain()
            now = self._clock()
            if self._conn is None and now >= next_open:
                next_open = now + RETRY_S
                self._conn = self._open()
                if self._conn is not None:
                    self._recovered()
            if batch:
                self._write(batch)
            if self._conn is not None and not stopping:
                if now >= next_retention:
                    next_retention = now + _RETENTION_EVERY_S
                    self._upkeep(self._delete_old)
                if now >= next_size:
                    next_size = now + _SIZE_EVERY_S
                    self._upkeep(self._bound_size)
            if stopping:
                break
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _drain(self) -> list[tuple[Any, ...]]:
        queue = self._queue
        batch = []
        while queue:  # popleft is atomic: the event loop may append meanwhile
            batch.append(queue.popleft())
        return batch

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        self._offset = time.time() - time.perf_counter()  # follows a wall-clock step
        conn = self._conn
        if conn is None:
            self._dropped_written += len(rows)
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                insert_rows(conn, rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self._dropped_written += len(rows)
            self._failed(f"cannot write {self.path}: {exc}")
            return
        self.written += len(rows)
        self._recovered()

    def _upkeep(self, task: Callable[[sqlite3.Connection], None]) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            task(conn)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.warning("ledger: upkeep of %s failed: %s", self.path, exc)

    def _delete(self, conn: sqlite3.Connection, before: float, limit: int | None = None) -> int:
        """Delete the oldest rows from before ``before`` (at most ``limit``), a chunk per transaction."""
        deleted = 0
        while limit is None or deleted < limit:
            chunk = _DELETE_CHUNK if limit is None else min(_DELETE_CHUNK, limit - deleted)
            cursor = conn.execute(
                "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE ts < ? ORDER BY id LIMIT ?)",
                (before, chunk),
            )
            deleted += cursor.rowcount
            if cursor.rowcount < chunk:
                break
        if deleted:
            # Give the freed pages back to the disk; it frees a page per step, so step to the end.
            conn.execute("PRAGMA incremental_vacuum").fetchall()
        return deleted

    def _delete_old(self, conn: sqlite3.Connection) -> None:
        days = self._retention_days()
        cutoff = self._clock() - days * 86400.0
        deleted = self._delete(conn, cutoff)
        if deleted:
            log.info("ledger: deleted %d requests older than %d days", deleted, days)

    def _bound_size(self, conn: sqlite3.Connection) -> None:
        deleted = 0
        for _ in range(8):  # the pages rows take are only estimated: measure again after each pass
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            used = (conn.execute("PRAGMA page_count").fetchone()[0] - free) * page_size
            if used <= self._max_bytes:
                break
            count = conn.execute("SELECT count(*) FROM requests").fetchone()[0]
            if not count:
                break
            # Down to 90% of the bound, so it is not crossed again at the next batch.
            excess = used - 0.9 * self._max_bytes
            deleted += self._delete(conn, math.inf, limit=max(1, math.ceil(count * excess / used)))
        if deleted:
            log.warning(
                "ledger: %s is over its size bound of %g MiB: deleted the %d oldest requests",
                self.path, self._max_bytes / (1024 * 1024), deleted,
            )
