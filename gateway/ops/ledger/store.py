"""The ledger file: where it is, its schema, and how every reader and writer opens it.

One SQLite file shared by every worker (``--workers N``) and read by ``gateway stats`` while the
gateway runs: WAL mode (readers never block the writer, nor the writer them), a busy timeout
(workers take turns for the write lock instead of failing), and short transactions (one batch
of rows at a time). The schema carries its version in ``PRAGMA user_version``; a file is
created, with its schema, on first use.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from gateway.paths import state_dir
from rules.model import RuleSet

__all__ = [
    "BUSY_TIMEOUT_S",
    "COLUMNS",
    "LEDGER_FILE",
    "SCHEMA_VERSION",
    "LedgerError",
    "connect",
    "ledger_path",
]

SCHEMA_VERSION = 1
LEDGER_FILE = "ledger.db"
BUSY_TIMEOUT_S = 5.0  # a worker waits this long for another's write lock (a batch takes ~1 ms)
_WAL_LIMIT_BYTES = 4 * 1024 * 1024  # the -wal file is truncated back to this after a checkpoint

# The row, in insert order (gateway.ops.ledger.rows builds it). Times: ts in epoch seconds at
# arrival, durations in milliseconds. Tokens are None when the upstream reported none.
COLUMNS = (
    "ts",
    "endpoint",
    "session",
    "request_class",
    "agent_type",
    "client_model",
    "route",
    "provider",
    "upstream_model",
    "status",
    "stream",
    "ttfb_ms",
    "total_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "tried",
    "notes",
    "error",
)

_SCHEMA = (
    # AUTOINCREMENT: ids never go back, even when retention empties the table, so a reader
    # can follow new rows by id (gateway.ops.ledger.reader).
    """CREATE TABLE IF NOT EXISTS requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        endpoint TEXT NOT NULL,
        session TEXT,
        request_class TEXT NOT NULL,
        agent_type TEXT,
        client_model TEXT NOT NULL,
        route TEXT,
        provider TEXT,
        upstream_model TEXT,
        status INTEGER NOT NULL,
        stream INTEGER NOT NULL,
        ttfb_ms REAL,
        total_ms REAL,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cache_read_tokens INTEGER,
        cache_creation_tokens INTEGER,
        tried INTEGER NOT NULL,
        notes TEXT,
        error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class LedgerError(Exception):
    """The ledger cannot be used: its message says why and what to do."""


def ledger_path(ruleset: RuleSet | None, env: Mapping[str, str], *, home: Path | None = None) -> Path | None:
    """The ledger file ``[server] ledger`` names (None: ``ledger = false``).

    Default: ``ledger.db`` in the state directory. ``~`` is expanded; a relative path is
    relative to the config file's directory (the working directory without a file).
    """
    setting = ruleset.server.ledger if ruleset is not None else True
    if setting is False:
        return None
    if setting is True:
        return state_dir(env, home=home) / LEDGER_FILE
    path = Path(setting).expanduser()
    if not path.is_absolute():
        source = ruleset.source.path if ruleset is not None else None
        base = Path(source).resolve().parent if source else Path.cwd()
        path = base / path
    return path


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the schema in place.

    ``create``: make the directory, the file and the schema when missing (the writer); without
    it a missing file is a ``LedgerError`` (readers: ``gateway stats``, the dashboard).
    """
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                # Usage data is nobody else's business: owner-only, before SQLite creates it 0644.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            blocker = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
            if blocker is not None and not blocker.is_dir():
                reason = f"{blocker} is a file, not a directory"
            raise LedgerError(f"cannot create the ledger {path}: {reason}") from None
    elif not path.exists():
        raise LedgerError(f"no ledger at {path} yet: the gateway creates it when it serves its first request")
    # A URI, for mode=rw (open, never create); as_uri() spells Windows drives as SQLite wants.
    uri = f"{path.resolve().as_uri()}?mode={'rwc' if create else 'rw'}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open the ledger {path}: {exc}") from None
    try:
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a crash may lose the last batch, never the file
        conn.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")
        _prepare(conn, path, create)
    except sqlite3.Error as exc:
        conn.close()
        raise LedgerError(f"cannot use the ledger {path}: {exc}") from None
    except LedgerError:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path, create: bool) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger {path} has schema version {version}, written by a newer gateway (this one "
            f"knows {SCHEMA_VERSION}); upgrade, or point [server] ledger at another file"
        )
    if version == SCHEMA_VERSION:
        return
    if not create:
        raise LedgerError(f"{path} is not a gateway ledger (no schema in it)")
    # Both only take effect on a new file, and must come before the first table: freed pages
    # can then be given back (the size bound), and readers never block the writers.
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another worker may have created it while this one waited for the lock.
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise

