"""What happened to one client request: the record the request log, metrics and stats read.

An ``Exchange`` is created when a request arrives, filled in along its route (one ``Attempt``
per target tried), and handed to the exchange listeners once the answer is sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["Attempt", "Exchange"]


@dataclass(slots=True)
class Attempt:
    """One try of one target."""

    provider: str
    model: str
    outcome: str  # "ok", "status", "connect", "timeout", "read", "credential", "skipped", "spill", "policy"
    status: int | None = None
    detail: str = ""


@dataclass(slots=True)
class Exchange:
    """What happened to one client request, for the request log, metrics and tests."""

    request_id: str
    endpoint: str  # "messages" or "count_tokens"
    client: str = ""
    session: str | None = None  # Claude Code's x-claude-code-session-id, when sent
    model: str = ""
    route: str | None = None
    stream: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    status: int = 0
    started: float = field(default_factory=time.perf_counter)
    ttfb: float | None = None  # seconds from arrival to the first byte sent to the client
    finished: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None  # set when the gateway answered with an error or ended a stream with one
    # What Claude Code said the request is for (its hint headers), set when a route has `when`.
    request_class: str | None = None
    agent_type: str | None = None
    spills: tuple[tuple[str, str], ...] = ()  # (provider, window) of each target that stepped aside

    @property
    def used(self) -> Attempt | None:
        """The attempt whose answer the client got."""
        for attempt in reversed(self.attempts):
            if attempt.outcome in ("ok", "status"):
                return attempt
        return None
