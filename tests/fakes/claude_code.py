"""Requests captured from the real Claude Code CLI, ready to replay through the gateway.

The captures live in tests/fakes/captured/ (how and with which Claude Code they were taken:
the README there). Each loads as a `CapturedRequest`:

    request = load("cc_print_haiku_stream", api_key="sk-client")
    response = request.send(httpx.Client(), gateway.url)        # or request.stream(...)
    opus = request.with_model("claude-opus-5-5")
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

CAPTURED_DIR = Path(__file__).with_name("captured")
REDACTED = "<REDACTED test credential>"

# Recomputed or chosen by the replaying client (content-length differs anyway: long strings
# in the captured bodies were shortened).
_DROPPED_HEADERS = frozenset({"host", "content-length", "accept-encoding"})


def compact_json(value: Any) -> bytes:
    """JSON as Claude Code (JavaScript's JSON.stringify) writes it: no spaces, UTF-8 as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class CapturedRequest:
    """One captured request: method, path with query, headers in captured order, body bytes."""

    name: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body is not None else None

    @property
    def model(self) -> str | None:
        body = self.json
        return body.get("model") if isinstance(body, dict) else None

    @property
    def stream(self) -> bool:
        body = self.json
        return bool(body.get("stream")) if isinstance(body, dict) else False

    @property
    def header_dict(self) -> dict[str, str]:
        return dict(self.headers)

    def with_model(self, model: str) -> CapturedRequest:
        """The same request for another model (the body's `model` replaced, re-serialised)."""
        body = self.json
        if not isinstance(body, dict):
            raise ValueError(f"{self.name} has no JSON body")
        return replace(self, body=compact_json({**body, "model": model}))

    def with_body(self, body: Mapping[str, Any]) -> CapturedRequest:
        return replace(self, body=compact_json(body))

    def with_headers(self, **headers: str | None) -> CapturedRequest:
        """Set (or with None remove) headers; names match case-insensitively, `_` means `-`."""
        changes = {name.replace("_", "-").lower(): value for name, value in headers.items()}
        kept = [(k, v) for k, v in self.headers if k.lower() not in changes]
        added = [(name, value) for name, value in changes.items() if value is not None]
        return replace(self, headers=tuple(kept + added))

    def build(self, client: httpx.Client, base_url: str) -> httpx.Request:
        return client.build_request(
            self.method, base_url.rstrip("/") + self.path, headers=list(self.headers), content=self.body
        )

    def send(self, client: httpx.Client, base_url: str) -> httpx.Response:
        """Send it to `base_url` (the gateway) and read the whole response."""
        return client.send(self.build(client, base_url))

    @contextmanager
    def stream_to(self, client: httpx.Client, base_url: str) -> Iterator[httpx.Response]:
        """Send it and yield the response unread, for streaming (closed on exit)."""
        response = client.send(self.build(client, base_url), stream=True)
        try:
            yield response
        finally:
            response.close()


def names() -> list[str]:
    """The captured request names (file stems), sorted."""
    return sorted(path.stem for path in CAPTURED_DIR.glob("*.json"))


def load(name: str, *, api_key: str | None = "sk-ant-test-client", auth_token: str | None = None) -> CapturedRequest:
    """Load one capture by name (with or without .json).

    The redacted credential header (x-api-key in every capture) gets `api_key`; None removes
    it. `auth_token` adds `authorization: Bearer ...` (Claude Code with ANTHROPIC_AUTH_TOKEN).
    """
    path = CAPTURED_DIR / (name if name.endswith(".json") else name + ".json")
    raw = json.loads(path.read_text())
    headers: list[tuple[str, str]] = []
    for header, value in raw["headers"].items():
        if header.lower() in _DROPPED_HEADERS:
            continue
        if REDACTED in value:
            if api_key is None:
                continue
            value = value.replace(REDACTED, api_key)
        headers.append((header, value))
    if auth_token is not None:
        headers = [(k, v) for k, v in headers if k.lower() != "authorization"]
        headers.append(("authorization", f"Bearer {auth_token}"))
    body = raw.get("body")
    return CapturedRequest(
        name=path.stem,
        method=raw["method"],
        path=raw["path"],
        headers=tuple(headers),
        body=compact_json(body) if body is not None else None,
    )


def load_all(*, api_key: str | None = "sk-ant-test-client", auth_token: str | None = None) -> list[CapturedRequest]:
    """Every capture, in name order."""
    return [load(name, api_key=api_key, auth_token=auth_token) for name in names()]
