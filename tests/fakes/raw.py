"""HTTP on raw sockets: a client that sends bytes exactly as written, and a lenient upstream.

An HTTP library normalises what it sends (header names trimmed, folded lines refused, its own
Host), so the edge cases of a request head can only be sent by hand:

    reply = raw_request(gateway.port, b"POST /v1/messages HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n...")
    reply.status, reply.headers["content-type"], reply.json

`RawUpstream` accepts any head a byte stream can carry (no parser of its own to refuse one),
records it byte for byte (`heads`, `bodies`), and answers with the `answer` coroutine, which
writes whatever bytes it likes: a plain message by default, or a gzip body, a 100 MB body, an
event stream labelled as JSON. Use it where the aiohttp-based FakeUpstream would refuse or
normalise what the gateway must be shown not to send.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ._loop import LoopThread

__all__ = ["RawReply", "RawUpstream", "UpstreamRequest", "message_answer", "raw_request", "read_reply"]


@dataclass
class RawReply:
    """A response as read off the socket: status, headers (names lower case, last wins), body."""

    status: int
    headers: dict[str, str]
    body: bytes
    head: bytes = b""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def read_reply(sock: socket.socket, timeout: float = 10.0) -> RawReply:
    """Read one response: head, then the body by content-length, chunked coding or until close."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError(f"connection closed before a response head: {data[:200]!r}")
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(rest) < size:
            piece = sock.recv(65536)
            if not piece:
                break
            rest += piece
        return RawReply(status, headers, rest[:size], head)
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += _recv_or_fail(sock)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += _recv_or_fail(sock)
            body, rest = body + rest[:size], rest[size + 2:]
            if size == 0:
                return RawReply(status, headers, body, head)
    while piece := sock.recv(65536):
        rest += piece
    return RawReply(status, headers, rest, head)


def _recv_or_fail(sock: socket.socket) -> bytes:
    piece = sock.recv(65536)
    if not piece:
        raise ConnectionError("connection closed inside a chunked body")
    return piece


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> RawReply:
    """Send ``data`` as it is to 127.0.0.1:port and read one response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_reply(sock, timeout)


@dataclass
class UpstreamRequest:
    """One request as RawUpstream received it: the head byte for byte, and the body."""

    head: bytes
    body: bytes
    lines: list[bytes] = field(default_factory=list)

    def header_names(self) -> list[bytes]:
        """Every header line's name as sent (case and whitespace kept)."""
        return [line.partition(b":")[0] for line in self.lines[1:]]


Answer = Callable[[UpstreamRequest, asyncio.StreamWriter], Awaitable[None]]


def message_answer(text: str = "hello from the raw upstream", headers: bytes = b"") -> Answer:
    """An Answer: a small Anthropic message with a content-length (``headers``: extra lines, CRLF-ended)."""

    async def answer(request: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        body = json.dumps({
            "id": "msg_raw", "type": "message", "role": "assistant", "model": "raw",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 5},
        }).encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + headers
                     + b"content-length: %d\r\n\r\n" % len(body) + body)

    return answer


class RawUpstream:
    """A lenient HTTP/1.1 upstream on a raw socket that records each request head byte for byte."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.answer = answer or message_answer()
        self._loop = LoopThread("fake-raw-upstream")
        self._server: asyncio.AbstractServer | None = None
        self._lock = threading.Condition()
        self.requests: list[UpstreamRequest] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RawUpstream:
        self._loop.start()
        self._server = self._loop.run(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        server = self._server
        if server is not None:
            self._server = None

            async def close() -> None:
                server.close()

            self._loop.run(close())
        self._loop.stop()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[UpstreamRequest]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"raw upstream received {len(self.requests)} requests, wanted {n}")
                self._lock.wait(remaining)
            return list(self.requests)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = (await reader.readuntil(b"\r\n\r\n"))[:-4]
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.split(b"\r\n")
                size = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        size = int(value.strip())
                body = await reader.readexactly(size) if size else b""
                request = UpstreamRequest(head, body, lines)
                with self._lock:
                    self.requests.append(request)
                    self._lock.notify_all()
                await self.answer(request, writer)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    def __enter__(self) -> RawUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
