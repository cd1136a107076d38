"""Process logging: one format for the gateway's lines and Sanic's, text or JSON.

``--log-file F`` writes to F instead of stderr, rotated by size (``LOG_FILE_MAX_BYTES``, keeping
``LOG_FILE_BACKUPS`` old files: F.1, F.2, ...). Every worker process appends to the same file;
see ``SharedRotatingFileHandler`` for how they agree on rotation.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from gateway.timefmt import iso

__all__ = [
    "CHECK_INTERVAL_S",
    "JsonFormatter",
    "LOG_FILE_BACKUPS",
    "LOG_FILE_MAX_BYTES",
    "SharedRotatingFileHandler",
    "setup_logging",
]

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

LOG_FILE_MAX_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5
CHECK_INTERVAL_S = 0.5


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus any ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": iso(record.created, millis=True),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        # orjson: about 5x faster than json.dumps on a request line; str() for anything exotic.
        return orjson.dumps(doc, default=str).decode()


class SharedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log file that several processes (the workers) append to.

    Each process opens the file for appending, so lines from different workers never overwrite
    each other. At most every ``check_interval_s``, one ``stat`` of the path tells whether
    another process (or logrotate) moved the file away: then this process reopens the path (its
    lines of the last moments went to the moved file, none is lost), or whether the file is over
    the limit: then it rotates it under an exclusive lock on ``F.lock`` and checks again once it
    holds the lock, so the file is rotated once, not once per worker. A file may so grow past
    the limit by the lines of one interval. (The stdlib handler formats every record twice and
    stats the path twice per record to decide.) Without ``fcntl`` (Windows) rotation is not
    coordinated: use one worker there.
    """

    def __init__(
        self,
        filename: str,
        max_bytes: int = LOG_FILE_MAX_BYTES,
        backups: int = LOG_FILE_BACKUPS,
        check_interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        filename = os.path.abspath(os.path.expanduser(filename))
        os.makedirs(os.path.dirname(filename), exist_ok=True)
        super().__init__(filename, mode="a", maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._identity = self._stream_identity()
        self._check_interval_s = check_interval_s
        self._next_check = 0.0

    def _stream_identity(self) -> tuple[int, int]:
        assert self.stream is not None
        st = os.fstat(self.stream.fileno())
        return st.st_dev, st.st_ino

    def _reopen(self) -> None:
        if self.stream is not None:
            self.stream.close()
        self.stream = self._open()
        self._identity = self._stream_identity()

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802 (stdlib name)
        if self.stream is None:
            self._reopen()
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + self._check_interval_s
        try:
            st = os.stat(self.baseFilename)
        except FileNotFoundError:
            self._reopen()  # moved away and not yet replaced: start the new file
            return False
        if (st.st_dev, st.st_ino) != self._identity:
            self._reopen()  # another process rotated it
            return False
        return st.st_size >= self.maxBytes > 0

    def doRollover(self) -> None:  # noqa: N802 (stdlib name)
        with _exclusive(self.baseFilename + ".lock"):
            try:
                st = os.stat(self.baseFilename)
            except FileNotFoundError:
                st = None
            if st is None or (st.st_dev, st.st_ino) != self._identity or st.st_size < self.maxBytes:
                self._reopen()  # someone else rotated while we waited for the lock
                return
            super().doRollover()
            if self.stream is None:
                self.stream = self._open()
            self._identity = self._stream_identity()


@contextmanager
def _exclusive(path: str) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` across processes (none without fcntl)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def setup_logging(level: str = "info", fmt: str = "text", log_file: str | None = None) -> None:
    """Configure the root logger for this process (every worker calls it).

    ``log_file``: write there, rotated by size, instead of stderr.
    """
    handler: logging.Handler = (
        SharedRotatingFileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, SharedRotatingFileHandler):
            old.close()  # our previous log file
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    root.setLevel(numeric if isinstance(numeric, int) else logging.INFO)
    # Sanic's own chatter (worker starts, MOTD) only when debugging; errors always.
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in ("sanic.root", "sanic.server", "sanic.access", "sanic.websockets"):
        logging.getLogger(name).setLevel(quiet)
    # httpx logs every request at INFO: noise, and formatting work on the hot path.
    logging.getLogger("httpx").setLevel(logging.WARNING)
