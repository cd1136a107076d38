"""A fast fake Anthropic upstream for benchmarks: raw asyncio protocol + httptools, on uvloop.

    python benchmarks/fake_upstream.py --port 9100 [--deltas 10] [--delay-ms 0]

- POST /v1/messages: a fixed small message JSON; with `"stream": true` in the body, an SSE
  stream of the real event sequence (message_start, content_block_start, N content_block_delta,
  content_block_stop, message_delta, message_stop) with a delay between consecutive events.
  The query string may override the shape per request: `?deltas=20&delay_ms=200`.
- POST /v1/messages/count_tokens: `{"input_tokens": len(body) // 4}`.
- GET /health: `{"status":"ok"}`; GET /stats: request counters (proof that traffic arrived) and
  the most streams open at once; `/stats?reset` then restarts that high-water mark.

Why not aiohttp.web: the upstream shares the machine with the load generator and the proxy, so
every microsecond it spends is taken from them. A bare protocol with httptools (the parser Sanic
uses) answers in a few microseconds and still speaks correct HTTP/1.1: keep-alive, chunked
request bodies, `Connection: close`, one response at a time per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import cast
from urllib.parse import parse_qs

import httptools
import orjson
import uvloop

# `"stream": true` as a JSON member. A string value that merely contains the words cannot
# match: its inner quotes are escaped (`\"stream\"`), so the closing quote is not followed by ':'.
_STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')

_MESSAGE = orjson.dumps(
    {
        "id": "msg_bench_0001",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-5-5",
        "content": [{"type": "text", "text": "Hello from the fake upstream."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 8},
    }
)


def _response(status: str, body: bytes, content_type: bytes, keep_alive: bool) -> bytes:
    head = (
        b"HTTP/1.1 " + status.encode() + b"\r\n"
        b"content-type: " + content_type + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"request-id: req_bench_0001\r\n"
    )
    if not keep_alive:
        head += b"connection: close\r\n"
    return head + b"\r\n" + body


_JSON = b"application/json"
_MESSAGE_RESPONSE = {ka: _response("200 OK", _MESSAGE, _JSON, ka) for ka in (True, False)}
_NOT_FOUND = orjson.dumps(
    {"type": "error", "error": {"type": "not_found_error", "message": "fake upstream: no such path"}}
)
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"request-id: req_bench_0001\r\n"
    b"transfer-encoding: chunked\r\n"
)


def _sse(event: str, data: dict[str, object]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


_EVENT_CACHE: dict[int, list[bytes]] = {}


def stream_events(deltas: int) -> list[bytes]:
    """The SSE events of one streamed message with `deltas` text deltas, each as an HTTP chunk."""
    cached = _EVENT_CACHE.get(deltas)
    if cached is not None:
        return cached
    message = orjson.loads(_MESSAGE)
    message["content"] = []
    message["stop_reason"] = None
    message["usage"] = {"input_tokens": 12, "output_tokens": 1}
    events = [
        _sse("message_start", {"type": "message_start", "message": message}),
        _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    for i in range(deltas):
        events.append(
            _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": f"word{i} "},
                },
            )
        )
    events += [
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": deltas},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    chunks = [_chunk(e) for e in events]
    _EVENT_CACHE[deltas] = chunks
    return chunks


class Stats:
    """Counters shared by all connections, served at GET /stats."""

    def __init__(self) -> None:
        self.messages = 0
        self.streams = 0
        self.count_tokens = 0
        self.open_streams = 0
        self.max_open_streams = 0

    def as_json(self) -> bytes:
        return orjson.dumps(self.__dict__)


class UpstreamProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection. Requests are answered in order; a stream pauses reading."""

    def __init__(self, deltas: int, delay_s: float, stats: Stats) -> None:
        self._deltas = deltas
        self._delay_s = delay_s
        self._stats = stats
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._streaming: asyncio.Task[None] | None = None
        self._pending: list[tuple[bytes, bytes, bytes, bool]] = []

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance check here.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._streaming is not None:
            self._streaming.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close()
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.write(_response("400 Bad Request", b"", _JSON, False))
            self._close()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = (
            self._parser.get_method(),
            self._url,
            b"".join(self._body),
            self._parser.should_keep_alive(),
        )
        if self._streaming is not None:
            # A pipelined request that arrived with the stream's: answer it after the stream.
            self._pending.append(request)
        else:
            self._dispatch(*request)

    def _dispatch(self, method: bytes, url: bytes, body: bytes, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        path, _, query = url.partition(b"?")
        if method == b"POST" and path == b"/v1/messages":
            if _STREAM_TRUE.search(body):
                self._start_stream(query, keep_alive)
                return
            self._stats.messages += 1
            transport.write(_MESSAGE_RESPONSE[keep_alive])
        elif method == b"POST" and path == b"/v1/messages/count_tokens":
            self._stats.count_tokens += 1
            answer = b'{"input_tokens":%d}' % (len(body) // 4)
            transport.write(_response("200 OK", answer, _JSON, keep_alive))
        elif method == b"GET" and path == b"/health":
            transport.write(_response("200 OK", b'{"status":"ok"}', _JSON, keep_alive))
        elif method == b"GET" and path == b"/stats":
            transport.write(_response("200 OK", self._stats.as_json(), _JSON, keep_alive))
            if query == b"reset":
                # Start a new high-water mark, e.g. before a concurrent-streams run.
                self._stats.max_open_streams = self._stats.open_streams
        else:
            transport.write(_response("404 Not Found", _NOT_FOUND, _JSON, keep_alive))
        if not keep_alive:
            self._close()

    # streaming

    def _start_stream(self, query: bytes, keep_alive: bool) -> None:
        deltas, delay_s = self._deltas, self._delay_s
        if query:
            params = parse_qs(query.decode("latin-1"))
            if "deltas" in params:
                deltas = int(params["deltas"][0])
            if "delay_ms" in params:
                delay_s = float(params["delay_ms"][0]) / 1000.0
        assert self._transport is not None
        # A client may pipeline the next request; it must wait until this response is done.
        self._transport.pause_reading()
        self._streaming = asyncio.get_running_loop().create_task(
            self._stream(stream_events(deltas), delay_s, keep_alive)
        )

    async def _stream(self, events: list[bytes], delay_s: float, keep_alive: bool) -> None:
        stats = self._stats
        stats.streams += 1
        stats.open_streams += 1
        stats.max_open_streams = max(stats.max_open_streams, stats.open_streams)
        try:
            head = _STREAM_HEAD if keep_alive else _STREAM_HEAD + b"connection: close\r\n"
            if delay_s <= 0:
                self._write(head + b"\r\n" + b"".join(events) + b"0\r\n\r\n")
            else:
                self._write(head + b"\r\n" + events[0])
                for event in events[1:]:
                    await asyncio.sleep(delay_s)
                    self._write(event)
                self._write(b"0\r\n\r\n")
        except ConnectionError:
            return
        finally:
            stats.open_streams -= 1
            self._streaming = None
        if not keep_alive:
            self._close()
            return
        while self._pending and self._streaming is None:
            self._dispatch(*self._pending.pop(0))
        if self._streaming is None and self._transport is not None:
            self._transport.resume_reading()

    def _write(self, data: bytes) -> None:
        if self._transport is None:
            # The client went away mid-stream: stop producing.
            raise ConnectionResetError("client closed the connection")
        self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


async def serve(host: str, port: int, deltas: int, delay_s: float) -> None:
    """Serve until cancelled."""
    loop = asyncio.get_running_loop()
    stats = Stats()
    server = await loop.create_server(
        lambda: UpstreamProtocol(deltas, delay_s, stats),
        host,
        port,
        # 1,000 streams connect within a second: a short accept queue would drop SYNs and add
        # whole seconds of retransmission to some of them.
        backlog=4096,
        reuse_address=True,
    )
    print(f"fake upstream on http://{host}:{port}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--deltas", type=int, default=10, help="content_block_delta events per stream")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay between consecutive events")
    args = parser.parse_args(argv)
    try:
        uvloop.run(serve(args.host, args.port, args.deltas, args.delay_ms / 1000.0))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
