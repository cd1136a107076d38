"""What a fake upstream saw: one record per request and one per TCP connection.

All times are `time.monotonic()` seconds in the test process, so a test can compare them with
its own clock readings (e.g. "closed within 100 ms of the client going away").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

CREDENTIAL_HEADERS = ("x-api-key", "authorization")


@dataclass
class ConnectionRecord:
    """One TCP connection accepted by the fake."""

    id: int
    peer: tuple[str, int] | None
    opened_at: float
    closed_at: float | None = None
    requests: int = 0

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@dataclass
class RecordedRequest:
    """One HTTP request as the fake received it, and what became of it.

    `headers` keeps the original order and case and looks names up case-insensitively
    (`rec.headers["X-Api-Key"]`, `rec.headers.getall("anthropic-beta")`); `raw_headers` is the
    same as a tuple of (name, value) pairs.

    Outcome fields are filled in by the server thread as the exchange goes on:
    - `status`: the status sent (None if no head was sent: hang, drop);
    - `outcome`: "reply", "error", "raw", "rejected" (auth or validation), "hang", "drop", "handler",
      "not_found";
    - `events_sent`: SSE events handed to the socket (counted just before each write);
    - `completed_at`: when the last byte was handed to the socket (set just before that write,
      so once a client holds the whole answer it is set; for `Handler` answers, set after the
      handler returns: use `upstream.wait_for_completion()`);
    - `disconnected_at`: when the connection closed before the response was complete, and
      `client_disconnected` whether the client (not the fake, as in Drop) closed it.
    """

    method: str
    path: str
    raw_headers: tuple[tuple[str, str], ...]
    body: bytes
    connection_id: int
    received_at: float
    upstream: str
    status: int | None = None
    outcome: str | None = None
    events_sent: int = 0
    completed_at: float | None = None
    disconnected_at: float | None = None
    client_disconnected: bool = False
    _json: Any = field(default=None, repr=False)
    _json_parsed: bool = field(default=False, repr=False)

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return CIMultiDictProxy(CIMultiDict(self.raw_headers))

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        if not self._json_parsed:
            try:
                self._json = json.loads(self.body) if self.body else None
            except ValueError:
                self._json = None
            self._json_parsed = True
        return self._json

    @property
    def path_only(self) -> str:
        """The path without its query string."""
        return self.path.split("?", 1)[0]

    @property
    def query(self) -> str:
        """The query string without the '?' ('' when there is none)."""
        return self.path.split("?", 1)[1] if "?" in self.path else ""

    @property
    def model(self) -> str | None:
        body = self.json
        return body.get("model") if isinstance(body, dict) else None

    @property
    def stream(self) -> bool:
        body = self.json
        return bool(body.get("stream")) if isinstance(body, dict) else False

    @property
    def betas(self) -> list[str]:
        """The anthropic-beta values, split on commas, across all anthropic-beta headers."""
        values: list[str] = []
        for header in self.headers.getall("anthropic-beta", []):
            values.extend(part.strip() for part in header.split(",") if part.strip())
        return values

    @property
    def credentials(self) -> list[tuple[str, str]]:
        """The credential headers sent, as (lower-case name, value): x-api-key, authorization."""
        return [(name.lower(), value) for name, value in self.raw_headers if name.lower() in CREDENTIAL_HEADERS]

    def contains(self, secret: str) -> bool:
        """Whether `secret` appears anywhere in this request: header names, values or body."""
        if any(secret in name or secret in value for name, value in self.raw_headers):
            return True
        return secret.encode() in self.body or secret in self.path
