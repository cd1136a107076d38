"""Which route, provider and model served each Claude Code session's last request.

Claude Code sends ``x-claude-code-session-id`` on every request; ``gateway statusline`` reads the
same id from the JSON Claude Code gives it and asks ``GET /sessions/{digest}`` which provider
answered last, so the person sees "zai glm-4.7" while the UI says Sonnet.

The memory is per worker (like the rest of ``Runtime``), bounded (the oldest sessions go first)
and keyed by a digest of the session id, never the id itself. It is filled by an exchange
listener, after the answer was written: nothing is added to the request path but one header
lookup. Measured with ``benchmarks/ux_bench.py`` on the 2-core project machine: 1.2-1.4 us per
observed request (up to 2.8 us while other jobs load it), after the answer was written; the
header lookup 0.14-0.2 us.

Document of ``GET /sessions/{digest}`` (fields may be added, never changed)::

    {"session": "3f1c...", "at": "2026-01-05T09:12:44Z", "endpoint": "messages",
     "model": "claude-sonnet-5-5", "route": "main", "provider": "zai",
     "upstream_model": "glm-4.7", "status": 200}

``route``, ``provider`` and ``upstream_model`` are null when no route took the request.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any, NamedTuple

from gateway.proxy.exchange import Exchange
from gateway.timefmt import iso

__all__ = ["CAPACITY", "SESSION_HEADER", "SessionMemory", "Served", "session_digest"]

SESSION_HEADER = "x-claude-code-session-id"
CAPACITY = 4096  # sessions remembered per worker: ~1 MB at most


_digests: dict[str, str] = {}


def session_digest(session_id: str) -> str:
    """The key of a session: its id's BLAKE2b-128 in 32 hex digits (the statusline computes it too).

    BLAKE2b: a third faster than SHA-256 here (0.7 against 1.0 us), and this runs per request;
    a session sends many requests, so the digests of the last few thousand ids are kept
    (a dict look-up: 0.05 us), ids up to 64 characters, so the memory stays under 1 MB.
    """
    digest = _digests.get(session_id)
    if digest is None:
        digest = hashlib.blake2b(session_id.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        if len(session_id) <= 64:  # Claude Code's are UUIDs; a client's long strings are not kept
            if len(_digests) >= CAPACITY:
                _digests.clear()
            _digests[session_id] = digest
    return digest


class Served(NamedTuple):
    """The last request of one session, as the gateway answered it.

    A NamedTuple, not a frozen dataclass: built per request, and that is 0.6 us against 1.6 us.
    """

    at: float  # epoch seconds
    endpoint: str
    model: str  # as the client named it
    route: str | None
    provider: str | None
    upstream_model: str | None
    status: int

    def document(self, digest: str) -> dict[str, Any]:
        """The JSON document of ``GET /sessions/{digest}``."""
        return {
            "session": digest,
            "at": iso(self.at),
            "endpoint": self.endpoint,
            "model": self.model,
            "route": self.route,
            "provider": self.provider,
            "upstream_model": self.upstream_model,
            "status": self.status,
        }


class SessionMemory:
    """The last request per session (by digest), for at most ``capacity`` sessions."""

    __slots__ = ("capacity", "_entries")

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, Served] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def observe(self, exchange: Exchange) -> None:
        """An exchange listener: remember a finished Messages call of a session."""
        session = exchange.session
        if not session or exchange.endpoint != "messages":
            return  # count_tokens calls serve nobody's conversation
        attempt = exchange.used
        if attempt is None and exchange.attempts:
            attempt = exchange.attempts[-1]  # no answer from it, but it is what the request met
        served = Served(
            time.time(), exchange.endpoint, exchange.model, exchange.route,
            attempt.provider if attempt else None, attempt.model if attempt else None, exchange.status,
        )
        entries = self._entries
        key = session  # already the digest (gateway.server.endpoints): the id is never kept
        entries[key] = served
        entries.move_to_end(key)
        if len(entries) > self.capacity:
            entries.popitem(last=False)

    def get(self, digest: str) -> Served | None:
        """The last request of the session with this digest, if it is remembered."""
        return self._entries.get(digest)
