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
    # "ok", "status", "connect", "timeout", "read", "credential", "skipped", "overloaded", "spill", "policy"
    outcome: str
    status: int | None = None
    detail: str = ""


@dataclass(slots=True)
class Exchange:
    """What happened to one client request, for the request log, metrics and tests."""

    request_id: str
    endpoint: str  # "messages" or "count_tokens"
    client: str = ""
    model: str = ""
    route: str | None = None
    # What Claude Code said the request is for (its hint headers, rules.conditions): None when
    # it sent none and no route asked ("unknown" when a route asked and it sent none).
    request_class: str | None = None
    agent_type: str | None = None  # a subagent's x-claude-code-agent-type
    session: str | None = None  # a digest of x-claude-code-session-id (ops.sessions), never the raw id
    stream: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    status: int = 0
    started: float = field(default_factory=time.perf_counter)
    ttfb: float | None = None  # seconds from arrival to the first byte sent to the client
    finished: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None  # usage.cache_read_input_tokens
    cache_creation_tokens: int | None = None  # usage.cache_creation_input_tokens
    error: str | None = None  # set when the gateway answered with an error or ended a stream with one
    spills: tuple[tuple[str, str], ...] = ()  # (provider, window) of each target that stepped aside

    @property
    def used(self) -> Attempt | None:
        """The attempt whose answer the client got."""
        for attempt in reversed(self.attempts):
            if attempt.outcome in ("ok", "status"):
                return attempt
        return None
