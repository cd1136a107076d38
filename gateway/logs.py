"""Process logging: one format for the gateway's lines and Sanic's, text or JSON."""

from __future__ import annotations

import json
import logging
import sys
import time

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus any ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger for this process (every worker calls it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    root.setLevel(numeric if isinstance(numeric, int) else logging.INFO)
    # Sanic's own chatter (worker starts, MOTD) only when debugging; errors always.
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in ("sanic.root", "sanic.server", "sanic.access", "sanic.websockets"):
        logging.getLogger(name).setLevel(quiet)
    # httpx logs every request at INFO: noise, and formatting work on the hot path.
    logging.getLogger("httpx").setLevel(logging.WARNING)
