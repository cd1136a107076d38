"""Reading usage and signatures from SSE bytes as they pass (gateway.wire.sse)."""

from __future__ import annotations

import json
import time

from gateway.wire.sse import StreamObserver, observe_message


def _event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


STREAM = b"".join(
    [
        _event("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 12, "output_tokens": 1}}}),
        _event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}),
        _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "SIG-part1"}}),
        _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "-part2"}}),
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "REDACTED-DATA"}}),
        _event("content_block_stop", {"type": "content_block_stop", "index": 1}),
        _event("ping", {"type": "ping"}),
        _event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 42}}),
        _event("message_stop", {"type": "message_stop"}),
    ]
)


def test_observer_reads_usage_stop_and_signatures_whatever_the_chunking() -> None:
    for size in (1, 7, 64, len(STREAM)):
        seen: list[str] = []
        observer = StreamObserver(seen.append)
        for i in range(0, len(STREAM), size):
            observer.feed(STREAM[i : i + size])
        observer.finish()
        assert (observer.input_tokens, observer.output_tokens) == (12, 42)
        assert observer.stop_reason == "tool_use"
        assert observer.saw_message_stop and not observer.saw_error
        assert seen == ["SIG-part1-part2", "REDACTED-DATA"]
        assert observer.at_boundary


def test_observer_knows_when_a_stream_stopped_mid_event_and_sees_error_events() -> None:
    observer = StreamObserver()
    observer.feed(STREAM[:50])
    assert not observer.at_boundary
    observer = StreamObserver()
    observer.feed(_event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "x"}}))
    assert observer.saw_error and not observer.saw_message_stop


def test_crlf_streams_are_understood() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    for size in (1, 2, 3, 5, len(crlf)):  # every way a CRLF or a blank line splits across chunks
        seen: list[str] = []
        observer = StreamObserver(seen.append)
        for i in range(0, len(crlf), size):
            observer.feed(crlf[i : i + size])
        assert observer.saw_message_stop and observer.output_tokens == 42 and observer.at_boundary
        assert seen == ["SIG-part1-part2", "REDACTED-DATA"]


def test_an_event_too_long_to_matter_is_skipped_and_the_stream_read_on() -> None:
    observer = StreamObserver()
    observer.feed(STREAM[:200])
    huge = b"event: content_block_delta\ndata: " + b"x" * (3 << 20)
    for i in range(0, len(huge), 65536):
        observer.feed(huge[i : i + 65536])
    assert len(observer._tail) <= (1 << 20) + 65536 and not observer.at_boundary
    observer.feed(b"\n")
    observer.feed(b"\n" + STREAM[STREAM.index(b"event: message_delta"):])
    assert observer.output_tokens == 42 and observer.saw_message_stop and observer.at_boundary


def _cpu_seconds(megabytes: int) -> float:
    """CPU time to observe ``megabytes`` of one event with no blank line, in 64 KB chunks (best of 3)."""
    chunk = b"data: " + b"x" * (64 * 1024)
    best = float("inf")
    for _ in range(3):
        observer = StreamObserver()
        started = time.process_time()
        for _ in range(megabytes * 16):
            observer.feed(chunk)
        best = min(best, time.process_time() - started)
    return best


def test_scanning_is_linear_in_the_bytes() -> None:
    # Quadratic (each chunk searched again with all before it) was 0.9 s for 12 MB and 28 s for
    # 48 MB, a ratio of ~30; linear is ~4. A ratio, never a wall-clock figure: machines differ.
    small, large = _cpu_seconds(12), _cpu_seconds(48)
    assert large / max(small, 1e-3) < 8, (small, large)


def test_non_streaming_body_gives_the_same_facts() -> None:
    seen: list[str] = []
    body = json.dumps(
        {
            "content": [
                {"type": "thinking", "thinking": "x", "signature": "SIG"},
                {"type": "redacted_thinking", "data": "DATA"},
                {"type": "text", "text": "hi"},
            ],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 4},
        }
    ).encode()
    observer = observe_message(body, seen.append)
    assert seen == ["SIG", "DATA"] and (observer.input_tokens, observer.output_tokens) == (3, 4)
    assert observe_message(b"not json").input_tokens is None


def test_cache_tokens_are_kept_from_stream_and_body() -> None:
    start = {"type": "message_start", "message": {"usage": {
        "input_tokens": 5, "cache_read_input_tokens": 1200, "cache_creation_input_tokens": 300, "output_tokens": 1}}}
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}
    observer = StreamObserver()
    observer.feed(_event("message_start", start) + _event("message_delta", delta))
    assert (observer.cache_read_tokens, observer.cache_creation_tokens, observer.output_tokens) == (1200, 300, 9)

    body = json.dumps({"usage": {"input_tokens": 3, "cache_read_input_tokens": 7, "output_tokens": 4}}).encode()
    seen = observe_message(body)
    assert (seen.cache_read_tokens, seen.cache_creation_tokens) == (7, None)
    assert (StreamObserver().cache_read_tokens, StreamObserver().cache_creation_tokens) == (None, None)
