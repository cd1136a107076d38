"""The writer thread: batches, restarts, retention, the size bound, and files it cannot write."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from ledger_support import finished, poll, query, seed

from gateway.ops.ledger import writer as writer_module
from gateway.ops.ledger.store import COLUMNS, SCHEMA_VERSION, LedgerError, connect
from gateway.ops.ledger.writer import LedgerWriter, insert_rows


def rows(path: Path) -> int:
    return int(query(path, "SELECT count(*) FROM requests")[0][0])


def test_rows_are_written_in_batches_and_survive_a_new_writer(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.db"
    writer = LedgerWriter(path, flush_rows=50)
    writer.start()
    for i in range(120):
        writer(finished(model=f"m{i % 3}"))
    poll(lambda: writer.written == 120, "120 rows written")
    writer.stop()
    assert rows(path) == 120
    assert query(path, "PRAGMA user_version")[0][0] == SCHEMA_VERSION
    assert query(path, "PRAGMA journal_mode")[0][0] == "wal"
    assert path.stat().st_mode & 0o777 == 0o600

    again = LedgerWriter(path)
    again.start()
    again(finished())
    again.stop()  # stop writes what is queued
    assert rows(path) == 121


def test_a_batch_larger_than_one_statement_is_written_whole_in_order(tmp_path: Path) -> None:
    # 600 rows: two full multi-row INSERTs and a shorter last one, every value where it belongs.
    path = tmp_path / "ledger.db"
    conn = connect(path, create=True)
    made = [
        tuple(
            {"ts": float(i), "status": 200 + i % 3, "client_model": f"m{i}", "input_tokens": i, "notes": None}.get(
                column, "x" if column in ("endpoint", "request_class") else (0 if column in ("stream", "tried") else None)
            )
            for column in COLUMNS
        )
        for i in range(600)
    ]
    conn.execute("BEGIN IMMEDIATE")
    insert_rows(conn, made)
    conn.execute("COMMIT")
    conn.close()
    got = query(path, f"SELECT {', '.join(COLUMNS)} FROM requests ORDER BY id")
    assert got == made


def test_retention_deletes_rows_older_than_ledger_days_and_follows_reloads(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    now = time.time()
    seed(path, [now - 40 * 86400, now - 31 * 86400, now - 5 * 86400, now - 60])
    days = [30]
    writer = LedgerWriter(path, retention_days=lambda: days[0])
    writer.start()  # a pass at start: a gateway stopped for a month has old rows to drop
    poll(lambda: rows(path) == 2, "rows older than 30 days deleted")
    writer.stop()

    days[0] = 1  # ledger_days = 1 after a reload: the next pass (here: the next start) uses it
    writer = LedgerWriter(path, retention_days=lambda: days[0])
    writer.start()
    poll(lambda: rows(path) == 1, "rows older than 1 day deleted")
    writer.stop()
    assert query(path, "SELECT ts FROM requests")[0][0] == pytest.approx(now - 60)


def test_the_size_bound_deletes_the_oldest_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    now = time.time()
    seed(path, [now - 3600 + i for i in range(3000)], notes="fallback zai 429; " * 4)
    before = rows(path)
    writer = LedgerWriter(path, max_bytes=128 * 1024)
    writer.start()
    poll(lambda: rows(path) < before, "the oldest rows deleted")
    writer.stop()
    pages, free, size = (query(path, f"PRAGMA {p}")[0][0] for p in ("page_count", "freelist_count", "page_size"))
    assert (pages - free) * size <= 128 * 1024
    newest = query(path, "SELECT max(ts) FROM requests")[0][0]
    assert newest == pytest.approx(now - 3600 + 2999)  # the newest rows stay


def test_an_unwritable_path_logs_one_warning_counts_drops_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "RETRY_S", 0.2)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the ledger's directory should be")
    path = blocker / "ledger.db"
    caplog.set_level(logging.DEBUG, logger="gateway.ledger")
    writer = LedgerWriter(path, flush_interval_s=0.05)
    writer.start()
    for _ in range(5):
        writer(finished())
    poll(lambda: writer.dropped >= 5, "5 rows dropped")
    time.sleep(0.5)  # several retries happen meanwhile: none may log a second warning
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert f"cannot create the ledger {path}: {blocker} is a file, not a directory" in warnings[0].getMessage()
    assert "requests are still served but not recorded" in warnings[0].getMessage()
    assert writer.status()["state"] == "failing"

    blocker.unlink()
    blocker.mkdir()
    poll(lambda: writer.failure is None and path.exists(), "the ledger opened again")
    writer(finished())
    poll(lambda: writer.written == 1, "a row written after recovery")
    writer.stop()
    recovered = [r.getMessage() for r in caplog.records if "writing to" in r.getMessage()]
    assert recovered and "were not recorded" in recovered[0]


def test_a_full_disk_drops_rows_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.db"

    def small(path: Path, *, create: bool) -> sqlite3.Connection:
        conn = connect(path, create=create)
        conn.execute("PRAGMA max_page_count = 8")  # SQLite's own "database or disk is full"
        return conn

    monkeypatch.setattr(writer_module, "connect", small)
    caplog.set_level(logging.WARNING, logger="gateway.ledger")
    writer = LedgerWriter(path, flush_rows=100, flush_interval_s=0.05)
    writer.start()
    for _ in range(3):
        for _ in range(400):
            writer(finished(model="m" * 150))
        poll(lambda: not writer._queue, "the batch taken")
    poll(lambda: writer.written + writer.dropped == 1200, "every row written or dropped")
    writer.stop()
    assert writer.dropped > 0
    full = [r.getMessage() for r in caplog.records if "full" in r.getMessage()]
    assert len(full) == 1, full


def test_two_writers_share_one_file_without_losing_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    writers = [LedgerWriter(path, flush_rows=20, flush_interval_s=0.01) for _ in range(2)]
    for w in writers:
        w.start()

    def feed(w: LedgerWriter) -> None:
        for _ in range(1000):
            w(finished())

    threads = [threading.Thread(target=feed, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.stop()
    assert sum(w.written for w in writers) == 2000 and all(w.dropped == 0 for w in writers)
    assert rows(path) == 2000


def test_a_ledger_from_a_newer_gateway_or_a_missing_one_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(LedgerError, match="written by a newer gateway"):
        connect(path, create=True)
    with pytest.raises(LedgerError, match="no ledger at .* yet"):
        connect(tmp_path / "missing.db", create=False)
