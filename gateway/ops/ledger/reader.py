"""What the dashboard reads from the ledger: the last requests, and requests and tokens per
provider in time buckets for its charts.

The charts cover 7 days. Scanning 7 days of rows every second would cost more as the ledger
grows, so the reader follows the file instead: it keeps per-provider sums in 15-minute buckets
and, at each read, adds only the rows written since the last one (ids only grow: the table is
AUTOINCREMENT). Fifteen minutes divide every time zone's offset, so the page's local hours and
days are exact sums of buckets. Reads run in a thread (``asyncio.to_thread``), one at a time.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.ops.ledger.rows import row
from gateway.ops.ledger.store import COLUMNS, LedgerError, connect

if TYPE_CHECKING:
    from gateway.proxy.exchange import Exchange

__all__ = ["BUCKET_S", "DAYS", "HOURS", "RECENT", "LedgerReader", "RecentInMemory", "chart_series"]

BUCKET_S = 900
HOURS = 24
DAYS = 7
RECENT = 100

# What the page shows of a row (the session digest and the endpoint stay in the file).
_SHOWN = (
    "ts", "request_class", "agent_type", "client_model", "route", "provider", "upstream_model", "status",
    "stream", "ttfb_ms", "total_ms", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_creation_tokens", "notes", "error",
)
_SHOWN_INDEX = [COLUMNS.index(name) for name in _SHOWN]

Buckets = dict[tuple[str, int], list[int]]  # (provider, ts // BUCKET_S) -> [requests, tokens]


def _shown(values: Iterable[Any]) -> dict[str, Any]:
    return dict(zip(_SHOWN, values))


def chart_series(buckets: Buckets, now: float, tz_minutes: int) -> dict[str, Any]:
    """Requests and tokens (input + output) per provider: the last 24 local hours, the last 7 local days.

    ``tz_minutes``: the page's offset from UTC (east positive). ``hour_starts``: each hour's
    start as epoch seconds, for the page to label; ``day_labels``: ``YYYY-MM-DD`` local dates.
    """
    shift = tz_minutes * 60
    hour_now = int((now + shift) // 3600)
    day_now = int((now + shift) // 86400)
    series: dict[str, dict[str, list[int]]] = {}
    for (provider, bucket), (requests, tokens) in buckets.items():
        local = bucket * BUCKET_S + shift
        hour = HOURS - 1 - (hour_now - int(local // 3600))
        day = DAYS - 1 - (day_now - int(local // 86400))
        if day < 0 or day >= DAYS:
            continue
        entry = series.get(provider)
        if entry is None:
            entry = series[provider] = {
                "hour_requests": [0] * HOURS, "hour_tokens": [0] * HOURS,
                "day_requests": [0] * DAYS, "day_tokens": [0] * DAYS,
            }
        entry["day_requests"][day] += requests
        entry["day_tokens"][day] += tokens
        if 0 <= hour < HOURS:
            entry["hour_requests"][hour] += requests
            entry["hour_tokens"][hour] += tokens
    return {
        "hour_starts": [(hour_now - HOURS + 1 + i) * 3600 - shift for i in range(HOURS)],
        "day_labels": [time.strftime("%Y-%m-%d", time.gmtime((day_now - DAYS + 1 + i) * 86400)) for i in range(DAYS)],
        "providers": {name: series[name] for name in sorted(series)},
    }


class LedgerReader:
    """The dashboard's view of the ledger file (any worker's rows), kept up to date by id."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._last_id = 0
        self._buckets: Buckets = {}

    def read(self, now: float, tz_minutes: int) -> dict[str, Any]:
        """``{"recent": [...], "charts": {...}}``, or ``{"error": "..."}``; blocking (call in a thread)."""
        with self._lock:
            try:
                conn = self._connection()
                self._follow(conn, now)
                rows = conn.execute(
                    f"SELECT {', '.join(_SHOWN)} FROM requests WHERE endpoint = 'messages' ORDER BY id DESC LIMIT ?",
                    (RECENT,),
                ).fetchall()
            except (LedgerError, sqlite3.Error) as exc:
                self.close()
                return {"error": str(exc)}
        return {"recent": [_shown(r) for r in rows], "charts": chart_series(self._buckets, now, tz_minutes)}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.path, create=False)
        return self._conn

    def _follow(self, conn: sqlite3.Connection, now: float) -> None:
        """Add the rows written since the last read to the buckets; drop buckets past 7 days."""
        since = now - (DAYS + 1) * 86400.0
        newest = conn.execute("SELECT max(id) FROM requests").fetchone()[0] or 0
        if newest < self._last_id:  # another file (deleted and created again): start over
            self._last_id, self._buckets = 0, {}
        if self._last_id == 0:
            first = conn.execute("SELECT min(id) FROM requests WHERE ts >= ?", (since,)).fetchone()[0]
            self._last_id = (first - 1) if first is not None else newest
        buckets = self._buckets
        cursor = conn.execute(
            "SELECT id, ts, provider, coalesce(input_tokens, 0) + coalesce(output_tokens, 0) FROM requests "
            "WHERE id > ? AND endpoint = 'messages'",
            (self._last_id,),
        )
        for row_id, ts, provider, tokens in cursor:
            key = (provider or "none", int(ts // BUCKET_S))
            entry = buckets.get(key)
            if entry is None:
                buckets[key] = [1, tokens]
            else:
                entry[0] += 1
                entry[1] += tokens
            self._last_id = max(self._last_id, row_id)
        self._last_id = max(self._last_id, newest)
        oldest = int(since // BUCKET_S)
        for key in [k for k in buckets if k[1] < oldest]:
            del buckets[key]


class RecentInMemory:
    """Without a ledger (``ledger = false``): this worker's last requests, for the dashboard."""

    def __init__(self) -> None:
        self._ring: deque[Exchange] = deque(maxlen=RECENT)

    def __call__(self, exchange: Exchange) -> None:
        if exchange.endpoint == "messages":
            self._ring.append(exchange)

    def read(self) -> list[dict[str, Any]]:
        offset = time.time() - time.perf_counter()
        return [_shown(row(e, offset)[i] for i in _SHOWN_INDEX) for e in reversed(self._ring)]
