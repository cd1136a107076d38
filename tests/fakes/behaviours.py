"""What a fake upstream does with a request: scripted per request or set as its default.

Content blocks (`Text`, `ToolUse`, `Thinking`, `RedactedThinking`) compose into a `Reply`;
the other behaviours (`Error`, `Raw`, `Hang`, `Drop`, `Handler`) replace the reply entirely,
and `Choose` picks one of them per request.

    upstream.enqueue(Error(429, retry_after=30))                        # next request only
    upstream.enqueue(Reply(content=(Thinking(), ToolUse("Read", {"file_path": "a"}))))
    upstream.set_default(Reply(event_delay_s=0.2))                       # every later request
    upstream.enqueue(Raw(429, {"error": {"code": "1302", "message": "busy"}}))  # a foreign shape
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

    from .records import RecordedRequest


@dataclass(frozen=True)
class Text:
    """A text block; `text=None` means "[name] model=M hello from the fake name upstream"."""

    text: str | None = None


@dataclass(frozen=True)
class ToolUse:
    """A tool_use block, streamed as content_block_start + input_json_delta pieces."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Thinking:
    """A thinking block, streamed as thinking_delta pieces then one signature_delta.

    `signature=None` signs with the upstream's own secret (the normal case); a string is sent
    verbatim, to play a provider that issues signatures nobody can verify.
    """

    thinking: str = "Let me think about this step by step."
    signature: str | None = None


@dataclass(frozen=True)
class RedactedThinking:
    """A redacted_thinking block; `data=None` issues fresh data signed by the upstream."""

    data: str | None = None


Block = Text | ToolUse | Thinking | RedactedThinking


@dataclass(frozen=True)
class Reply:
    """A successful Messages answer, JSON or SSE depending on the request's `stream`.

    Stream pacing (an "event" is one SSE event, `ping` included):
    - `head_delay_s`: wait before the response head (time to first byte);
    - `event_delay_s`: wait before every event after the first (a slow stream);
    - `drop_after_events=N`: send N events, then close the connection without ending the
      chunked body (an abrupt upstream disconnect);
    - `silent_after_events=N`: send N events, then say nothing until the client leaves;
    - `error_after_events=N`: send N events, then an SSE `error` event (overloaded_error) and
      end the stream cleanly, as Anthropic does when it fails mid-stream.
    For a non-streaming request, `drop_after_events` / `silent_after_events` (any N) send the
    head and the first half of the JSON body, then drop / go silent.
    On /v1/messages/count_tokens a Reply answers `{"input_tokens": input_tokens or estimate}`.
    """

    content: tuple[Block, ...] = (Text(),)
    stop_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    head_delay_s: float = 0.0
    event_delay_s: float = 0.0
    drop_after_events: int | None = None
    silent_after_events: int | None = None
    error_after_events: int | None = None


@dataclass(frozen=True)
class Error:
    """An Anthropic-shaped error answer: status, `{"type":"error","error":{...}}`, headers.

    `error_type` and `message` default from the status (429 rate_limit_error, 529
    overloaded_error, ...). `retry_after` adds a `retry-after` header (seconds). Every error
    carries a `request-id` header and `request_id` in the body, as Anthropic's do.
    """

    status: int
    message: str | None = None
    error_type: str | None = None
    retry_after: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Raw:
    """Any answer at all, as a provider that is not Anthropic sends it: status, body, headers.

    `body`: bytes or text as they are, anything else as JSON (`{"detail": [...]}`). Only
    `content-type` (default `application/json`; `headers` may give another) and `headers`
    are sent: no `request-id`, no rate-limit samples.
    """

    status: int
    body: bytes | str | Any = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class Hang:
    """Never answer. `send_head=True` first sends a 200 head (a body that never comes).

    The request ends when the client closes the connection (recorded as a disconnect) or when
    the fake stops.
    """

    send_head: bool = False


@dataclass(frozen=True)
class Drop:
    """Read the request, then close the connection without any response."""


HandlerFn = Callable[["web.BaseRequest", "RecordedRequest"], Awaitable["web.StreamResponse"]]


@dataclass(frozen=True)
class Handler:
    """Anything else: `await fn(aiohttp_request, recorded)` returns the aiohttp response.

    The request body was already read; use `recorded.body` / `recorded.json`.
    """

    fn: HandlerFn


@dataclass(frozen=True)
class Choose:
    """Decide per request: `fn(recorded)` returns the behaviour to use (e.g. random faults).

    Runs on the server's loop thread, after the checks; it must not block.
    """

    fn: Callable[[RecordedRequest], Behaviour]


Behaviour = Reply | Error | Raw | Hang | Drop | Handler | Choose


def tool_use_reply(name: str, input: Mapping[str, Any], *, thinking: bool = False) -> Reply:
    """A reply that calls one tool (optionally after a signed thinking block)."""
    blocks: tuple[Block, ...] = (ToolUse(name, input),)
    if thinking:
        blocks = (Thinking(f"I should call {name}."), *blocks)
    return Reply(content=blocks)


def thinking_reply(thinking: str = "Let me think about this step by step.", text: str | None = None) -> Reply:
    """A reply with a signed thinking block followed by a text block."""
    return Reply(content=(Thinking(thinking), Text(text)))
