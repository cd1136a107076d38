"""Helpers for the ledger tests: exchanges to record, rows to seed, waiting with a deadline."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from gateway.ops.ledger.store import COLUMNS, connect
from gateway.proxy.exchange import Attempt, Exchange

T = TypeVar("T")


def finished(model: str = "claude-sonnet-5-5", provider: str = "anthropic", status: int = 200, **fields: Any) -> Exchange:
    """A finished Messages exchange answered by ``provider``."""
    ex = Exchange("r", "messages", model=model, route="default", status=status, **fields)
    ex.attempts.append(Attempt(provider, model, "ok" if status < 400 else "status", status))
    ex.finished = ex.started + 0.01
    return ex


def seed(path: Path, stamps: Iterable[float], **fields: Any) -> None:
    """Rows at these times (epoch seconds), written directly."""
    defaults: dict[str, Any] = {
        "endpoint": "messages", "session": None, "request_class": "main", "agent_type": None,
        "client_model": "claude-sonnet-5-5", "route": "default", "provider": "anthropic",
        "upstream_model": "claude-sonnet-5-5", "status": 200, "stream": 1, "ttfb_ms": 100.0, "total_ms": 900.0,
        "input_tokens": 10, "output_tokens": 5, "cache_read_tokens": None, "cache_creation_tokens": None,
        "tried": 1, "notes": None, "error": None,
    }
    conn = connect(path, create=True)
    rows = [tuple({**defaults, **fields, "ts": ts}[c] for c in COLUMNS) for ts in stamps]
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    conn.execute("COMMIT")
    conn.close()


def query(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def poll(check: Callable[[], T], what: str, timeout: float = 15.0) -> T:
    """``check()`` until it is truthy (every 20 ms), or AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        time.sleep(0.02)
