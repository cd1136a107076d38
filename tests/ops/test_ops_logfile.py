"""--log-file: one size-rotated file that several worker processes share without losing lines."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path

from gateway.ops.logs import JsonFormatter, SharedRotatingFileHandler, setup_logging


def _write_lines(path: str, worker: int, count: int) -> None:
    handler = SharedRotatingFileHandler(path, max_bytes=4000, backups=200, check_interval_s=0.0)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"rotation-test-{worker}")
    logger.propagate = False
    logger.addHandler(handler)
    for n in range(count):
        logger.warning("worker=%d line=%04d %s", worker, n, "x" * 60)
    handler.close()


def test_several_processes_share_one_rotated_log_file_without_losing_lines(tmp_path: Path) -> None:
    path = str(tmp_path / "gateway.log")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_lines, args=(path, w, 300)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)

    files = sorted(tmp_path.glob("gateway.log*"))
    lines = [line for f in files if not f.name.endswith(".lock") for line in f.read_text().splitlines()]

    assert all(p.exitcode == 0 for p in workers)
    assert len([f for f in files if not f.name.endswith(".lock")]) > 3  # it did rotate
    assert sorted(lines) == sorted(f"worker={w} line={n:04d} {'x' * 60}" for w in range(3) for n in range(300))
    for f in files:
        # Rotated at the first line past the limit: never more than a line or two over it.
        assert f.stat().st_size < 4000 + 3 * 100


def test_a_file_moved_away_is_reopened_at_its_path(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    handler = SharedRotatingFileHandler(str(path), max_bytes=10_000, backups=2, check_interval_s=0.0)
    handler.setFormatter(logging.Formatter("%(message)s"))
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "line %d", (1,), None)

    handler.handle(record)
    path.rename(tmp_path / "gateway.log.old")  # logrotate, or another worker rotating
    record.args = (2,)
    handler.handle(record)
    handler.close()

    assert (tmp_path / "gateway.log.old").read_text() == "line 1\n"
    assert path.read_text() == "line 2\n"


def test_between_checks_lines_go_to_the_open_file_and_then_to_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    handler = SharedRotatingFileHandler(str(path), max_bytes=10_000, backups=2, check_interval_s=3600.0)
    handler.setFormatter(logging.Formatter("%(message)s"))
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "line %d", (1,), None)

    handler.handle(record)  # the first line checks
    path.rename(tmp_path / "gateway.log.old")
    record.args = (2,)
    handler.handle(record)  # within the interval: no stat, still the moved file
    handler._next_check = 0.0  # the interval is over
    record.args = (3,)
    handler.handle(record)
    handler.close()

    assert (tmp_path / "gateway.log.old").read_text() == "line 1\nline 2\n"
    assert path.read_text() == "line 3\n"


def test_setup_logging_writes_json_lines_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "gateway.log"
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        setup_logging("info", "json", str(path))
        logging.getLogger("gateway.test").info("hello", extra={"fields": {"n": 1, "odd": object}})
        handler = root.handlers[0]
    finally:
        for handler_now in list(root.handlers):
            root.removeHandler(handler_now)
            handler_now.close()
        for old in saved[0]:
            root.addHandler(old)
        root.setLevel(saved[1])

    import json

    doc = json.loads(path.read_text())
    assert isinstance(handler, SharedRotatingFileHandler)
    assert isinstance(handler.formatter, JsonFormatter)
    assert doc["message"] == "hello" and doc["logger"] == "gateway.test" and doc["n"] == 1
    assert doc["odd"] == str(object)  # anything not JSON becomes its str()
