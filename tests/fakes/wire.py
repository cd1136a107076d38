"""Anthropic Messages API wire shapes: messages, SSE events, errors, response headers."""

from __future__ import annotations

import json
import math
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .behaviours import Block, RedactedThinking, Text, Thinking, ToolUse
from .signing import Signer

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

DEFAULT_ERROR_MESSAGES: dict[int, str] = {
    400: "Invalid request",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "Not found",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "This request would exceed your organization's rate limit. Please try again later.",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Request timed out",
    529: "Overloaded",
}

_ALPHABET = string.ascii_letters + string.digits


def _token(prefix: str, size: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(size))


def new_request_id() -> str:
    return _token("req_")


def new_message_id() -> str:
    return _token("msg_")


def new_tool_use_id() -> str:
    return _token("toolu_")


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def error_body(error_type: str, message: str, request_id: str) -> bytes:
    return dumps({"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id})


def base_headers(request_id: str, content_type: str) -> dict[str, str]:
    """Headers Anthropic puts on every response, with rate-limit samples."""
    reset = (datetime.now(timezone.utc) + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "content-type": content_type,
        "request-id": request_id,
        "anthropic-organization-id": "00000000-0000-0000-0000-000000000000",
        "anthropic-ratelimit-requests-limit": "4000",
        "anthropic-ratelimit-requests-remaining": "3999",
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-input-tokens-limit": "400000",
        "anthropic-ratelimit-input-tokens-remaining": "399000",
        "anthropic-ratelimit-input-tokens-reset": reset,
        "anthropic-ratelimit-output-tokens-limit": "80000",
        "anthropic-ratelimit-output-tokens-remaining": "80000",
        "anthropic-ratelimit-output-tokens-reset": reset,
        "anthropic-ratelimit-tokens-limit": "480000",
        "anthropic-ratelimit-tokens-remaining": "479000",
        "anthropic-ratelimit-tokens-reset": reset,
    }


def unified_headers(
    *,
    status: str = "allowed",
    reset: float | None = None,
    claim: str = "five_hour",
    windows: dict[str, tuple[float, float]] | None = None,
) -> dict[str, str]:
    """A Claude plan's `anthropic-ratelimit-unified-*` headers, as Anthropic answers a login.

    `windows`: `{"5h": (utilization, reset_epoch_s), "7d": ...}`; each window's status is
    `rejected` at 1.0, `allowed_warning` from 0.8, else `allowed`. `reset`: the plan's (binding)
    reset in epoch seconds; None leaves the header out. Pass as `Reply(headers=...)` or
    `Error(429, headers=...)`.
    """
    headers = {"anthropic-ratelimit-unified-status": status, "anthropic-ratelimit-unified-representative-claim": claim}
    if reset is not None:
        headers["anthropic-ratelimit-unified-reset"] = str(int(reset))
    for window, (utilization, window_reset) in (windows or {}).items():
        state = "rejected" if utilization >= 1 else ("allowed_warning" if utilization >= 0.8 else "allowed")
        headers[f"anthropic-ratelimit-unified-{window}-utilization"] = f"{utilization:g}"
        headers[f"anthropic-ratelimit-unified-{window}-reset"] = str(int(window_reset))
        headers[f"anthropic-ratelimit-unified-{window}-status"] = state
    return headers


def estimate_input_tokens(body: bytes) -> int:
    """A deterministic stand-in for token counting: one token per four body bytes."""
    return max(1, len(body) // 4)


def sse(event: str, data: Any) -> bytes:
    """One SSE event in Anthropic's framing: `event:` line, `data:` line, blank line."""
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"


def _pieces(text: str, parts: int) -> list[str]:
    """Split text into about `parts` non-empty pieces (at least one, even for "")."""
    if not text:
        return [text]
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _words(text: str) -> list[str]:
    """Split after spaces, keeping them, so the deltas concatenate back to the text."""
    out: list[str] = []
    for word in text.split(" "):
        out.append(word + " ")
    out[-1] = out[-1][:-1]
    return [piece for piece in out if piece] or [text]


@dataclass
class RenderedBlock:
    """A block as it appears in a JSON message, and as start + deltas in a stream."""

    final: dict[str, Any]
    start: dict[str, Any]
    deltas: list[dict[str, Any]] = field(default_factory=list)
    output_tokens: int = 1


def render_blocks(blocks: Iterable[Block], *, default_text: str, signer: Signer) -> list[RenderedBlock]:
    rendered: list[RenderedBlock] = []
    for block in blocks:
        if isinstance(block, Text):
            text = default_text if block.text is None else block.text
            rendered.append(
                RenderedBlock(
                    final={"type": "text", "text": text},
                    start={"type": "text", "text": ""},
                    deltas=[{"type": "text_delta", "text": piece} for piece in _words(text)],
                    output_tokens=max(1, len(text.split())),
                )
            )
        elif isinstance(block, ToolUse):
            tool_id = block.id or new_tool_use_id()
            arguments = json.dumps(dict(block.input), separators=(",", ":"))
            # Anthropic opens a tool_use stream with an empty partial_json, then the pieces.
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [{"type": "input_json_delta", "partial_json": piece} for piece in _pieces(arguments, 3)]
            rendered.append(
                RenderedBlock(
                    final={"type": "tool_use", "id": tool_id, "name": block.name, "input": dict(block.input)},
                    start={"type": "tool_use", "id": tool_id, "name": block.name, "input": {}},
                    deltas=deltas,
                    output_tokens=max(1, len(arguments) // 4),
                )
            )
        elif isinstance(block, Thinking):
            signature = block.signature if block.signature is not None else signer.sign_thinking(block.thinking)
            deltas = [{"type": "thinking_delta", "thinking": piece} for piece in _words(block.thinking)]
            deltas.append({"type": "signature_delta", "signature": signature})
            rendered.append(
                RenderedBlock(
                    final={"type": "thinking", "thinking": block.thinking, "signature": signature},
                    start={"type": "thinking", "thinking": "", "signature": ""},
                    deltas=deltas,
                    output_tokens=max(1, len(block.thinking.split())),
                )
            )
        elif isinstance(block, RedactedThinking):
            data = block.data if block.data is not None else signer.redacted_data()
            # A redacted block arrives whole in content_block_start, with no deltas.
            rendered.append(
                RenderedBlock(
                    final={"type": "redacted_thinking", "data": data},
                    start={"type": "redacted_thinking", "data": data},
                )
            )
        else:  # pragma: no cover - the Block union is closed
            raise TypeError(f"not a content block: {block!r}")
    return rendered


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message_json(
    *,
    message_id: str,
    model: str,
    blocks: list[RenderedBlock],
    stop_reason: str,
    input_tokens: int,
    output_tokens: int,
) -> dict[str, Any]:
    """A non-streaming Messages response body."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block.final for block in blocks],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage(input_tokens, output_tokens),
    }


def stream_events(
    *,
    message_id: str,
    model: str,
    blocks: list[RenderedBlock],
    stop_reason: str,
    input_tokens: int,
    output_tokens: int,
) -> list[bytes]:
    """The full SSE event sequence, in Anthropic's order, one encoded event per item.

    message_start (usage with input tokens, output 1), then per block content_block_start,
    its deltas and content_block_stop, a `ping` right after the first content_block_start,
    then message_delta (stop_reason, cumulative usage) and message_stop.
    """
    start_message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage(input_tokens, 1),
    }
    events = [sse("message_start", {"type": "message_start", "message": start_message})]
    if not blocks:
        events.append(sse("ping", {"type": "ping"}))
    for index, block in enumerate(blocks):
        events.append(
            sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block.start})
        )
        if index == 0:
            events.append(sse("ping", {"type": "ping"}))
        for delta in block.deltas:
            events.append(sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": usage(input_tokens, output_tokens),
            },
        )
    )
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events


def stream_error_event(error_type: str, message: str, request_id: str) -> bytes:
    return sse("error", {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id})


def models_list(models: Iterable[str]) -> dict[str, Any]:
    data = [
        {"type": "model", "id": model, "display_name": model, "created_at": "2025-01-01T00:00:00Z"} for model in models
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def parse_sse(raw: str | bytes) -> list[tuple[str, Any]]:
    """Split an SSE body into (event name, parsed data) pairs; a trailing partial event is dropped.

    For asserting on streams as bytes on the wire, e.g. that a broken stream ends with
    `("error", {"type": "error", ...})`.
    """
    text = raw.decode() if isinstance(raw, bytes) else raw
    events: list[tuple[str, Any]] = []
    for chunk in text.replace("\r\n", "\n").split("\n\n")[:-1]:
        name, data = "message", []
        for line in chunk.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].lstrip())
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events
