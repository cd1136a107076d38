"""The one way the gateway writes a moment or a span of time.

Two forms of a moment, both UTC: ``iso`` for documents that programs read (/health, /stats,
/v1/models, JSON logs), and ``human`` for messages and log lines a person reads. Spans are
written by ``duration`` ("3 h 5 min") and ``ago`` ("5 min ago").
"""

from __future__ import annotations

import time

__all__ = ["ago", "duration", "human", "iso"]


def iso(epoch: float, *, millis: bool = False) -> str:
    """``2027-01-15T08:00:30Z`` (RFC 3339, UTC), or ``2027-01-15T08:00:30.125Z`` with ``millis``."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    if millis:
        stamp += f".{int(epoch * 1000) % 1000:03d}"
    return stamp + "Z"


def human(epoch: float) -> str:
    """``2027-01-15 08:00:30 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def duration(seconds: float) -> str:
    """A span at the precision a person wants: ``42 s``, ``7 min 5 s``, ``3 h 5 min``, ``2 d 4 h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def ago(seconds: float) -> str:
    """``5 min 3 s ago``; ``just now`` under a second."""
    return "just now" if seconds < 1 else f"{duration(seconds)} ago"
