"""Reading an SSE stream as it passes through, after each chunk was already sent on.

The observer never holds bytes back: the proxy sends a chunk to the client first and then
feeds it here. It keeps only the unfinished tail of the current event, and parses JSON only
for the few events that matter (usage, thinking signatures), found by a substring test, so
text deltas cost a couple of ``in`` checks per chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["StreamObserver", "observe_message"]


def _interesting(data: bytes) -> bool:
    """Usage, a thinking signature, or an error: the only events worth a JSON parse."""
    # Spelled out rather than any(...) over a tuple: this runs for every chunk of every stream.
    return b'"usage"' in data or b"signature" in data or b"redacted_thinking" in data or b"event: error" in data


class StreamObserver:
    """Collects usage, stop reason and thinking signatures from Anthropic SSE bytes."""

    __slots__ = (
        "_tail",
        "_pending",
        "on_signature",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "stop_reason",
        "saw_message_stop",
        "saw_error",
    )

    def __init__(self, on_signature: Callable[[str], None] | None = None) -> None:
        self._tail = b""
        self._pending: dict[int, str] = {}  # block index -> signature being streamed
        self.on_signature = on_signature
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cache_read_tokens: int | None = None  # usage.cache_read_input_tokens
        self.cache_creation_tokens: int | None = None  # usage.cache_creation_input_tokens
        self.stop_reason: str | None = None
        self.saw_message_stop = False
        self.saw_error = False

    @property
    def at_boundary(self) -> bool:
        """True when everything seen so far ends on a complete event."""
        return not self._tail

    def feed(self, chunk: bytes) -> None:
        data = self._tail + chunk if self._tail else chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        end = data.rfind(b"\n\n")
        if end < 0:
            self._tail = data
            return
        complete, self._tail = data[: end + 2], data[end + 2 :]
        if b"message_stop" in complete:
            self.saw_message_stop = True
        # A thinking block's signature is complete at its content_block_stop.
        stops = bool(self._pending) or b"signature" in complete
        if not (_interesting(complete) or (stops and b"content_block_stop" in complete)):
            return
        for event in complete.split(b"\n\n"):
            if event and (_interesting(event) or (self._pending and b"content_block_stop" in event)):
                self._event(event)

    def _event(self, event: bytes) -> None:
        name = b""
        payload = b""
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                payload += line[5:].lstrip(b" ")
            elif line.startswith(b"event:"):
                name = line[6:].strip()
        if name == b"error":
            self.saw_error = True
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict):
            self._message_event(doc)

    def _message_event(self, doc: dict[str, Any]) -> None:
        kind = doc.get("type")
        if kind == "message_start":
            message = doc.get("message")
            if isinstance(message, dict):
                self._usage(message.get("usage"))
        elif kind == "message_delta":
            self._usage(doc.get("usage"))
            delta = doc.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self.stop_reason = delta["stop_reason"]
        elif kind == "content_block_start":
            block = doc.get("content_block")
            if isinstance(block, dict):
                if block.get("type") == "redacted_thinking":
                    self._signature(block.get("data"))
                elif block.get("type") == "thinking" and block.get("signature"):
                    self._pending[doc.get("index", -1)] = block["signature"]
        elif kind == "content_block_delta":
            delta = doc.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "signature_delta":
                index = doc.get("index", -1)
                self._pending[index] = self._pending.get(index, "") + str(delta.get("signature", ""))
        elif kind == "content_block_stop":
            self._signature(self._pending.pop(doc.get("index", -1), None))
        elif kind == "error":
            self.saw_error = True

    def _usage(self, usage: Any) -> None:
        # message_delta usage is cumulative: later values replace earlier ones.
        if not isinstance(usage, dict):
            return
        if isinstance(usage.get("input_tokens"), int):
            self.input_tokens = usage["input_tokens"]
        if isinstance(usage.get("output_tokens"), int):
            self.output_tokens = usage["output_tokens"]
        # Only on the events that carry usage (message_start, message_delta), so two more
        # lookups there cost nothing per chunk.
        cached = usage.get("cache_read_input_tokens")
        if isinstance(cached, int):
            self.cache_read_tokens = cached
        created = usage.get("cache_creation_input_tokens")
        if isinstance(created, int):
            self.cache_creation_tokens = created

    def _signature(self, signature: Any) -> None:
        if isinstance(signature, str) and signature and self.on_signature is not None:
            self.on_signature(signature)

    def finish(self) -> None:
        """End of stream: signatures whose block never saw its stop event still count."""
        for signature in self._pending.values():
            self._signature(signature)
        self._pending.clear()


def observe_message(body: bytes, on_signature: Callable[[str], None] | None = None) -> StreamObserver:
    """The same facts from a non-streaming message body."""
    observer = StreamObserver(on_signature)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return observer
    if not isinstance(doc, dict):
        return observer
    observer._usage(doc.get("usage"))
    observer.stop_reason = doc.get("stop_reason") if isinstance(doc.get("stop_reason"), str) else None
    content = doc.get("content")
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict):
                if block.get("type") == "thinking":
                    observer._signature(block.get("signature"))
                elif block.get("type") == "redacted_thinking":
                    observer._signature(block.get("data"))
    return observer
