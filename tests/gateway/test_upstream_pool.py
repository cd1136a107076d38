"""gateway.upstream.pool (and .connection) through gateway.upstream.transport.Transport, against real loopback sockets.

The client is driven the way the gateway drives it: ``Transport.handle_async_request`` with an
``httpx.Request`` carrying the gateway's header list (``HEADERS_EXTENSION``) and a timeout
extension, then ``read_body`` / ``response.aiter_raw()`` / ``response.aclose()``.

Most tests use ``_Upstream``, a fake HTTP/1.1 upstream on the test's own event loop: it counts
the connections it accepts, sees each one's end (the client closing it, or itself), records the
requests, and answers each with a coroutine that writes whatever bytes it likes (or waits, or
cuts the connection). Being on the same loop as the client, its events are awaited directly
instead of polled across threads. ``RawUpstream`` (a thread of its own) plays the upstream where
the request head is checked byte for byte and the proxy; ``BlackHole`` an upstream that never
answers.

A few tests read private state of the client (``_buffered``, ``_complete``, ``_paused`` of a
connection, the pool's idle list): only to wait for, or to check, a condition that has no public
sign. Nothing of the client is replaced or mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import gzip
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
import pytest

# tests/ is on sys.path at run time (tests/conftest.py); a bare `mypy tests/gateway/test_upstream_pool.py`
# does not know it, hence the ignore (unused when mypy is given MYPYPATH=tests).
from fakes import BlackHole, closed_port  # type: ignore[import-not-found, unused-ignore]
from fakes.raw import RawUpstream, UpstreamRequest  # type: ignore[import-not-found, unused-ignore]
from gateway.upstream.transport import HEADERS_EXTENSION, AnswerTooLarge, Transport, read_body

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's proxy settings would send the direct tests through aiohttp instead of the pool."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# --- a fake upstream on the test's loop --------------------------------------------------------


@dataclass
class _Request:
    """One request as the fake read it: the head (without its blank line) and the body."""

    index: int  # in the order the fake received them, over all its connections
    head: bytes
    body: bytes

    @property
    def line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]


@dataclass
class _Link:
    """One accepted connection, from the fake's side."""

    index: int
    writer: asyncio.StreamWriter
    requests: list[_Request] = field(default_factory=list)
    # The client closed its side (the fake read EOF or a reset), not the fake.
    client_closed: asyncio.Event = field(default_factory=asyncio.Event)
    # The connection is over, whichever side ended it.
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    closed_by_fake: bool = False
    sent: int = 0
    draining: bool = False  # blocked in writer.drain(): the client does not take the bytes
    last_progress: float = 0.0  # loop time the fake last got bytes off its hands

    def write(self, data: bytes) -> None:
        self.writer.write(data)
        self.sent += len(data)

    async def drain(self) -> None:
        self.draining = True
        try:
            await self.writer.drain()
        finally:
            self.draining = False
        self.last_progress = asyncio.get_running_loop().time()

    async def close(self) -> None:
        """End the connection from the upstream's side (a FIN; the client sees EOF)."""
        self.closed_by_fake = True
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


_Answer = Callable[[_Link, _Request], Awaitable[None]]


class _Upstream:
    """An HTTP/1.1 upstream on 127.0.0.1 that records connections and requests; ``answer`` replies."""

    def __init__(self, answer: _Answer) -> None:
        self.answer = answer
        self.links: list[_Link] = []
        self.requests: list[_Request] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._serving: set[asyncio.Task[Any]] = set()
        self._answering: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def accepted(self) -> int:
        return len(self.links)

    async def __aenter__(self) -> _Upstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        # Answers still waiting are ours to cancel; the connection handlers end once their
        # connection is aborted (asyncio's streams log a handler task that was cancelled).
        for task in self._answering:
            task.cancel()
        for link in self.links:
            link.writer.transport.abort()
        await asyncio.gather(*self._answering, *self._serving, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        link = _Link(len(self.links), writer, last_progress=asyncio.get_running_loop().time())
        self.links.append(link)
        # Requests are read while the previous answer is still being written, so the fake
        # notices a client that leaves in the middle of an answer (it reads EOF).
        queue: asyncio.Queue[_Request | None] = asyncio.Queue()
        answering = asyncio.create_task(self._answer_all(link, queue))
        self._answering.add(answering)
        try:
            while (request := await self._read(reader)) is not None:
                link.requests.append(request)
                self.requests.append(request)
                queue.put_nowait(request)
            if not link.closed_by_fake:
                link.client_closed.set()
                answering.cancel()  # the client left: a real server stops writing too
            await asyncio.gather(answering, return_exceptions=True)
        finally:
            answering.cancel()
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            link.ended.set()

    async def _read(self, reader: asyncio.StreamReader) -> _Request | None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n"))[:-4]
            size = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    size = int(value.strip())
            body = await reader.readexactly(size) if size else b""
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return None
        return _Request(len(self.requests), head, body)

    async def _answer_all(self, link: _Link, queue: asyncio.Queue[_Request | None]) -> None:
        with contextlib.suppress(ConnectionError):
            while (request := await queue.get()) is not None:
                await self.answer(link, request)
                if link.closed_by_fake:
                    return
                await link.drain()


def _ok(body: bytes = b"ok", extra: bytes = b"") -> _Answer:
    """An answer with a content-length (``extra``: more header lines, CRLF-ended)."""

    async def answer(link: _Link, request: _Request) -> None:
        link.write(b"HTTP/1.1 200 OK\r\n" + extra + b"content-length: %d\r\n\r\n" % len(body) + body)

    return answer


def _raw(*pieces: bytes, then: str = "") -> _Answer:
    """Write ``pieces`` one by one (each drained); then ``"close"`` the connection or ``"hang"``."""

    async def answer(link: _Link, request: _Request) -> None:
        for piece in pieces:
            link.write(piece)
            await link.drain()
        if then == "close":
            await link.close()
        elif then == "hang":
            await asyncio.Event().wait()  # cancelled when the client leaves or at teardown

    return answer


def _in_turn(*answers: _Answer) -> _Answer:
    """The n-th request the fake receives (over all connections) gets the n-th answer; the last repeats."""

    async def answer(link: _Link, request: _Request) -> None:
        await answers[min(request.index, len(answers) - 1)](link, request)

    return answer


_HANG = _raw(then="hang")


# --- helpers -----------------------------------------------------------------------------------


def _request(
    url: str,
    *,
    method: str = "POST",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b'{"a":1}',
    read: float = 5.0,
    connect: float = 2.0,
    pool: float = 2.0,
    content_length: bool = True,
) -> httpx.Request:
    """A request as the gateway's ``Upstream.request`` builds it: its header list plus content-length.

    httpx.Request refuses str header values that are not ASCII, so its own header copy gets only
    the ASCII ones; the transport sends the extension's list, which is what is tested.
    """
    sent = list(headers if headers is not None else [("x-test", "1")])
    if content_length and body:
        sent.append(("content-length", str(len(body))))
    return httpx.Request(
        method, url, headers=[(k, v) for k, v in sent if v.isascii()], content=body,
        extensions={"timeout": {"connect": connect, "read": read, "write": 5.0, "pool": pool}, HEADERS_EXTENSION: sent},
    )


@contextlib.asynccontextmanager
async def _transport(max_connections: int = 10, keepalive_expiry_s: float = 5.0) -> AsyncIterator[Transport]:
    transport = Transport(max_connections=max_connections, keepalive_expiry_s=keepalive_expiry_s)
    try:
        yield transport
    finally:
        await transport.aclose()


async def _eventually(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds (for state that has no event to await)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


async def _within(awaitable: Awaitable[Any], what: str, timeout: float = 3.0) -> Any:
    """Await with a deadline, so a client that hangs fails the test instead of stalling the run."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"{what}: nothing after {timeout} s") from None


async def _read_until_error(response: httpx.Response) -> tuple[bytes, BaseException | None]:
    """The body bytes yielded before the stream failed, and the failure (None: it ended normally)."""
    chunks: list[bytes] = []
    try:
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
    except Exception as exc:  # the caller asserts on it
        return b"".join(chunks), exc
    return b"".join(chunks), None


def _connection(response: httpx.Response) -> Any:
    """The h1 connection behind a response (private: for state that has no public sign)."""
    stream: Any = response.stream  # transport._H1Body
    return stream._answer._conn


# --- 1. the request and the answer on the wire -------------------------------------------------


async def test_the_request_head_goes_byte_for_byte_and_the_answer_comes_back_raw(
    raw_upstream_factory: Callable[..., RawUpstream],
) -> None:
    body = gzip.compress(b'{"type":"message"}' * 20)

    async def gzipped(request: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 201 Created\r\nRequest-Id: req_1\r\ncontent-encoding: gzip\r\nX-Dup: 1\r\nx-dup: 2\r\n"
            b"content-length: %d\r\n\r\n" % len(body) + body
        )

    upstream = raw_upstream_factory(gzipped)
    headers = [
        ("x-api-key", "k"),
        ("Anthropic-Version", "2023-06-01"),  # case kept
        ("anthropic-beta", "a"),
        ("anthropic-beta", "b"),  # repeated, in order
        ("x-note", "café ✓ 日本"),  # UTF-8 on the wire, as the client sent it
        ("content-type", "application/json"),
    ]
    content = '{"text":"héllo"}'.encode()
    async with _transport() as transport:
        response = await transport.handle_async_request(
            _request(upstream.url + "/v1/messages?beta=true&x=%2F", headers=headers, body=content)
        )
        try:
            assert response.status_code == 201
            assert response.headers.raw == [
                (b"Request-Id", b"req_1"), (b"content-encoding", b"gzip"), (b"X-Dup", b"1"), (b"x-dup", b"2"),
                (b"content-length", b"%d" % len(body)),
            ]
            assert await read_body(response) == body  # raw: not decoded, whatever content-encoding says
        finally:
            await response.aclose()
    [seen] = upstream.requests
    assert seen.head == (
        b"POST /v1/messages?beta=true&x=%2F HTTP/1.1\r\n"
        b"host: 127.0.0.1:" + str(upstream.port).encode() + b"\r\n"
        b"x-api-key: k\r\n"
        b"Anthropic-Version: 2023-06-01\r\n"
        b"anthropic-beta: a\r\n"
        b"anthropic-beta: b\r\n"
        b"x-note: " + "café ✓ 日本".encode() + b"\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(content)).encode()
    )
    assert seen.body == content


async def test_a_header_value_sanic_decoded_with_surrogate_escapes_goes_back_as_its_bytes() -> None:
    # Sanic decodes header bytes as UTF-8 with surrogateescape: b"\xe9" (Latin-1 é) is "\udce9".
    async with _Upstream(_ok()) as upstream, _transport() as transport:
        response = await transport.handle_async_request(
            _request(upstream.url + "/x", headers=[("x-latin", "caf\udce9")])
        )
        await read_body(response)
        await response.aclose()
    assert b"\r\nx-latin: caf\xe9\r\n" in upstream.requests[0].head


async def test_a_body_is_framed_even_when_the_header_list_has_no_content_length() -> None:
    """Built exactly as test_transport.py's ``_request`` (no content-length in the list): AiohttpTransport
    adds the length itself, so a body must not go out unframed (the upstream would read no body, then
    take the body's bytes for the start of the next request)."""
    async with _Upstream(_ok()) as upstream, _transport() as transport:
        response = await transport.handle_async_request(_request(upstream.url + "/x", content_length=False))
        await read_body(response)
        await response.aclose()
    assert upstream.requests[0].body == b'{"a":1}'


async def test_a_request_without_body_goes_without_one_and_leaves_the_connection_clean() -> None:
    async with _Upstream(_ok()) as upstream, _transport() as transport:
        response = await transport.handle_async_request(
            _request(upstream.url + "/v1/models?limit=5", method="GET", body=b"")
        )
        assert await read_body(response) == b"ok"
        await response.aclose()
        again = await transport.handle_async_request(_request(upstream.url + "/v1/messages"))
        assert await read_body(again) == b"ok"
        await again.aclose()
    assert upstream.accepted == 1
    first, second = upstream.requests
    assert first.head == b"GET /v1/models?limit=5 HTTP/1.1\r\nhost: 127.0.0.1:%d\r\nx-test: 1" % upstream.port
    assert first.body == b""
    assert second.line == b"POST /v1/messages HTTP/1.1" and second.body == b'{"a":1}'


# --- 2. keep-alive -----------------------------------------------------------------------------


async def test_answers_read_to_the_end_leave_their_connection_for_the_next_request() -> None:
    async with _Upstream(_ok(b"hello")) as upstream, _transport() as transport:
        first = await transport.handle_async_request(_request(upstream.url + "/one"))
        assert await read_body(first) == b"hello"
        await first.aclose()
        second = await transport.handle_async_request(_request(upstream.url + "/two"))
        assert b"".join([chunk async for chunk in second.aiter_raw()]) == b"hello"
        await second.aclose()
        third = await transport.handle_async_request(_request(upstream.url + "/three"))
        assert await read_body(third) == b"hello"
        await third.aclose()
        assert upstream.accepted == 1
        assert [r.line for r in upstream.links[0].requests] == [
            b"POST /one HTTP/1.1", b"POST /two HTTP/1.1", b"POST /three HTTP/1.1"
        ]


async def test_an_answer_not_read_to_the_end_closes_its_connection() -> None:
    # The first answer stops half-way (the rest would come later); the consumer leaves after the head.
    partial = _raw(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"x" * 10, then="hang")
    async with _Upstream(_in_turn(partial, _ok())) as upstream, _transport() as transport:
        response = await transport.handle_async_request(_request(upstream.url + "/x"))
        assert response.status_code == 200
        await response.aclose()
        await _within(upstream.links[0].client_closed.wait(), "the client closing the unfinished answer's connection")
        again = await transport.handle_async_request(_request(upstream.url + "/x"))
        assert await read_body(again) == b"ok"
        await again.aclose()
        assert upstream.accepted == 2 and len(upstream.links[1].requests) == 1


async def test_an_answer_with_connection_close_is_not_reused() -> None:
    async with _Upstream(_ok(extra=b"connection: close\r\n")) as upstream, _transport() as transport:
        first = await transport.handle_async_request(_request(upstream.url + "/x"))
        assert await read_body(first) == b"ok"
        await first.aclose()
        await _within(upstream.links[0].client_closed.wait(), "the client closing a connection: close answer's connection")
        second = await transport.handle_async_request(_request(upstream.url + "/x"))
        assert await read_body(second) == b"ok"
        await second.aclose()
        assert upstream.accepted == 2


async def test_bytes_after_the_end_of_an_answer_are_not_part_of_it() -> None:
    """An upstream that sends more than its answer (here a whole second answer, in the same segment):
    the body ends where content-length says, and the connection is not reused."""
    extra = b"HTTP/1.1 200 OK\r\nx-unasked: 1\r\ncontent-length: 3\r\n\r\nbad"
    answer = _in_turn(_raw(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok" + extra), _ok(b"fine"))
    async with _Upstream(answer) as upstream, _transport() as transport:
        first = await transport.handle_async_request(_request(upstream.url + "/x"))
        body = await read_body(first)
        await first.aclose()
        assert (body, first.headers.raw) == (b"ok", [(b"content-length", b"2")])
        second = await transport.handle_async_request(_request(upstream.url + "/x"))
        assert await read_body(second) == b"fine"
        await second.aclose()
        assert upstream.accepted == 2


# --- 3. how answers end ------------------------------------------------------------------------


async def test_a_chunked_answer_arrives_de_chunked_and_its_connection_is_reused() -> None:
    chunked = _raw(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        b"5\r\nhello\r\n",
        b"6;ext=1\r\n world\r\n",
        b"0\r\n\r\n",
    )
    async with _Upstream(chunked) as upstream, _transport() as transport:
        first = await transport.handle_async_request(_request(upstream.url + "/x"))
        body, error = await _within(_read_until_error(first), "the chunked body's end")
        await first.aclose()
        assert (body, error) == (b"hello world", None)
        second = await transport.handle_async_request(_request(upstream.url + "/x"))
        assert await _within(read_body(second), "the chunked body's end") == b"hello world"
        await second.aclose()
        assert upstream.accepted == 1


async def test_an_answer_without_length_ends_at_the_close_of_the_connection_and_is_complete() -> None:
    until_close = _raw(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n", b"first part, ", b"last part", then="close")
    async with _Upstream(_in_turn(until_close, _ok())) as upstream, _transport() as transport:
        response = await transport.handle_async_request(_request(upstream.url + "/x"))
        body, error = await _within(_read_until_error(response), "the body's end")
        await response.aclose()
        assert (body, error) == (b"first part, last part", None)
        again = await transport.handle_async_request(_request(upstream.url + "/x"))
        assert await read_body(again) == b"ok"
        await again.aclose()
        assert upstream.accepted == 2


async def test_a_204_has_an_empty_body_and_keeps_its_connection() -> None:
    answer = _in_turn(_raw(b"HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n"), _ok())
    async with _Upstream(answer) as upstream, _transport() as transport:
        response = await _within(transport.handle_async_request(_request(upstream.url + "/x")), "a 204's head")
        assert response.status_code == 204
        assert await _within(read_body(response), "a 204's body") == b""
        await response.aclose()
        again = await transport.handle_async_request(_request(upstream.url + "/x"))
        assert await read_body(again) == b"ok"
        await again.aclose()
        assert upstream.accepted == 1


async def test_interim_answers_before_the_real_one_are_skipped() -> None:
    answer = _raw(
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx-real: 1\r\ncontent-length: 2\r\n\r\nok",
    )
    async with _Upstream(answer) as upstream, _transport() as transport:
        response = await _within(transport.handle_async_request(_request(upstream.url + "/x")), "the real answer")
        assert response.status_code == 200
        assert response.headers.raw == [(b"x-real", b"1"), (b"content-length", b"2")]
        assert await read_body(response) == b"ok"
        await response.aclose()


async def test_an_answer_larger_than_the_limit_is_answer_too_large() -> None:
    async with _Upstream(_ok(b"x" * 100)) as upstream, _transport() as transport:
        response = await transport.handle_async_request(_request(upstream.url + "/x"))
        with pytest.raises(AnswerTooLarge):
            await read_body(response, limit=10)
        await response.aclose()


# --- 4. failures -------------------------------------------------------------------------------


async def test_a_refused_connection_is_connect_error_with_its_cause_and_frees_its_slot() -> None:
    url = f"http://127.0.0.1:{closed_port()}/x"
    async with _transport(max_connections=1) as transport:
        for _ in range(2):  # the second would be a PoolTimeout if the first kept its slot
            with pytest.raises(httpx.ConnectError) as info:
                await transport.handle_async_request(_request(url, pool=0.5))
            assert isinstance(info.value.__cause__, ConnectionRefusedError)


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping a SYN when the accept queue is full")
async def test_a_connect_that_gets_no_answer_is_connect_timeout_and_frees_its_slot() -> None:
    # A listener that never accepts, its accept queue (backlog 0: one connection) filled: Linux
    # drops the next SYN, so the client's connect gets no answer at all.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(2)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            async with _transport(max_connections=1) as transport:
                for _ in range(2):  # the second would be a PoolTimeout if the first kept its slot
                    started = time.monotonic()
                    with pytest.raises(httpx.ConnectTimeout):
                        await _within(
                            transport.handle_async_request(
                                _request(f"http://127.0.0.1:{port}/x", connect=0.15, pool=0.1)
                            ),
                            "the connect timeout",
                        )
                    assert 0.1 <= time.monotonic() - started < 1.0
        finally:
            for filler in fillers:
                filler.close()


async def test_silence_before_the_head_is_read_timeout_and_the_connection_is_closed(black_hole: BlackHole) -> None:
    async with _transport(max_connections=1) as transport:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await _within(transport.handle_async_request(_request(black_hole.url + "/x", read=0.3)), "the read timeout")
        assert 0.25 <= time.monotonic() - started < 2.0
        await _eventually(lambda: black_hole.closed == 1, "the client closing the silent connection")
        # The slot is free again: a second try times out the same way, not with PoolTimeout.
        with pytest.raises(httpx.ReadTimeout):
            await _within(
                transport.handle_async_request(_request(black_hole.url + "/x", read=0.3, pool=0.2)), "the read timeout"
            )


@pytest.mark.parametrize("reads_late", [False, True], ids=["reading", "reading-after-the-timeout"])
async def test_silence_in_the_middle_of_a_body_is_read_timeout_after_the_bytes_sent(reads_late: bool) -> None:
    stalled = _raw(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n", b"0123456789", then="hang")
    async with _Upstream(_in_turn(stalled, _ok())) as upstream, _transport(max_connections=1) as transport:
        response = await transport.handle_async_request(_request(upstream.url + "/x", read=0.2))
        if reads_late:
            # The consumer starts only once the client gave up (it closes the connection on the
            # timeout): the bytes that came before are still delivered first.
            await _within(upstream.links[0].client_closed.wait(), "the client closing the silent connection")
        body, error = await _within(_read_until_error(response), "the read timeout")
        await response.aclose()
        assert body == b"0123456789" and isinstance(error, httpx.ReadTimeout)
        await _within(upstream.links[0].client_closed.wait(), "the client closing the silent connection")
        again = await transport.handle_async_request(_request(upstream.url + "/x", pool=0.5))
        assert await read_body(again) == b"ok"
        await again.aclose()


@pytest.mark.parametrize(
    "head", [b"content-length: 100\r\n", b"transfer-encoding: chunked\r\n"], ids=["content-length", "chunked"]
)
async def test_a_connection_cut_mid_body_is_an_error_after_the_bytes_sent(head: bytes) -> None:
    first = b"0123456789" if b"content-length" in head else b"a\r\n0123456789\r\n"
    cut = _raw(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n", first, then="close")
    async with _Upstream(cut) as upstream, _transport() as transport:
        response = await transport.handle_async_request(_request(upstream.url + "/x"))
        body, error = await _within(_read_until_error(response), "the cut")
        await response.aclose()
        assert body == b"0123456789"
        assert isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError))


async def test_a_connection_closed_before_the_head_is_remote_protocol_error() -> None:
    async with _Upstream(_raw(then="close")) as upstream, _transport() as transport:
        with pytest.raises(httpx.RemoteProtocolError):
            await _within(transport.handle_async_request(_request(upstream.url + "/x")), "the error")


async def test_a_garbage_answer_is_remote_protocol_error() -> None:
    async with _Upstream(_raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", then="hang")) as upstream, _transport() as transport:
        with pytest.raises(httpx.RemoteProtocolError):
            await _within(transport.handle_async_request(_request(upstream.url + "/x")), "the error")
        await _within(upstream.links[0].client_closed.wait(), "the client closing the garbage connection")


@pytest.mark.parametrize(
    "header",
    [("x-evil", "a\r\nx-injected: 1"), ("x-evil", "a\nx-injected: 1"), ("x-evil", "a\rb"), ("x-evil\r\nx-injected", "1")],
    ids=["crlf-in-value", "lf-in-value", "cr-in-value", "crlf-in-name"],
)
async def test_a_line_break_in_a_header_is_local_protocol_error_and_nothing_is_sent(header: tuple[str, str]) -> None:
    async with _Upstream(_ok()) as upstream, _transport() as transport:
        with pytest.raises(httpx.LocalProtocolError):
            await transport.handle_async_request(_request(upstream.url + "/x", headers=[("x-a", "1"), header]))
        # The next request is the first thing the upstream gets, alone on its connection.
        response = await transport.handle_async_request(_request(upstream.url + "/next"))
        await read_body(response)
        await response.aclose()
        assert upstream.accepted == 1
        assert [r.line for r in upstream.requests] == [b"POST /next HTTP/1.1"]
        assert b"injected" not in upstream.requests[0].head


# --- 5. the pool's limit -----------------------------------------------------------------------


@pytest.mark.parametrize("same_upstream", [True, False], ids=["same-upstream", "another-upstream"])
async def test_with_one_connection_a_second_request_waits_for_the_first_answer_then_is_served(
    same_upstream: bool,
) -> None:
    """Once the first answer is read, its connection is the second request's (same upstream), or is
    closed to make room for it (another upstream): either way well before the keep-alive expiry."""
    first_answer = _raw(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n", b"on")  # "e!" comes on release
    release = asyncio.Event()

    async def held(link: _Link, request: _Request) -> None:
        await first_answer(link, request)
        await release.wait()
        link.write(b"e!")

    async with (
        _Upstream(_in_turn(held, _ok(b"two"))) as upstream,
        _Upstream(_ok(b"two")) as other,
        _transport(max_connections=1) as transport,
    ):
        second_url = (upstream.url if same_upstream else other.url) + "/two"
        first = await transport.handle_async_request(_request(upstream.url + "/one"))
        second = asyncio.create_task(transport.handle_async_request(_request(second_url, pool=2.0)))
        try:
            # Something that must not happen has no event: give it 0.1 s (a loopback connect
            # and request take a few ms), then check the second request is still waiting.
            done, _ = await asyncio.wait({second}, timeout=0.1)
            assert not done and upstream.accepted + other.accepted == 1 and len(upstream.requests) == 1
            release.set()
            assert await read_body(first) == b"one!"
            await first.aclose()
            # Served well before its pool timeout (2 s) and the keep-alive expiry (5 s).
            response = await _within(second, "the second request once the first answer was read", timeout=0.5)
            assert await read_body(response) == b"two"
            await response.aclose()
            assert [r.line for r in upstream.requests + other.requests] == [b"POST /one HTTP/1.1", b"POST /two HTTP/1.1"]
        finally:
            second.cancel()
            await asyncio.gather(second, return_exceptions=True)


async def test_with_the_only_connection_held_a_request_times_out_with_pool_timeout() -> None:
    held = _raw(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", b"01234", then="hang")
    async with _Upstream(_in_turn(held, _ok())) as upstream, _transport(max_connections=1) as transport:
        first = await transport.handle_async_request(_request(upstream.url + "/one"))
        started = time.monotonic()
        with pytest.raises(httpx.PoolTimeout):
            await _within(transport.handle_async_request(_request(upstream.url + "/two", pool=0.2)), "the pool timeout")
        assert 0.15 <= time.monotonic() - started < 2.0
        assert len(upstream.requests) == 1
        await first.aclose()  # unfinished: closed, its slot freed
        again = await transport.handle_async_request(_request(upstream.url + "/three", pool=1.0))
        assert await read_body(again) == b"ok"
        await again.aclose()


async def test_a_body_that_fails_mid_way_frees_its_slot_without_being_closed_by_its_reader() -> None:
    # The reader meets a read timeout and forgets to aclose(): the only slot must come back anyway.
    stalled = _raw(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", b"01234", then="hang")
    async with _Upstream(_in_turn(stalled, _ok())) as upstream, _transport(max_connections=1) as transport:
        first = await transport.handle_async_request(_request(upstream.url + "/one", read=0.2))
        with pytest.raises(httpx.ReadTimeout):
            await _within(read_body(first), "the read timeout")
        again = await transport.handle_async_request(_request(upstream.url + "/two", pool=1.0))
        assert await read_body(again) == b"ok"
        await again.aclose()


async def test_an_answer_dropped_unread_and_unclosed_frees_its_connection() -> None:
    async with _Upstream(_in_turn(_raw(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", then="hang"), _ok())) as upstream, \
            _transport(max_connections=1) as transport:
        first = await transport.handle_async_request(_request(upstream.url + "/one"))
        assert first.status_code == 200
        del first  # a caller's bug: neither read nor closed
        gc.collect()
        again = await transport.handle_async_request(_request(upstream.url + "/two", pool=1.0))
        assert await read_body(again) == b"ok"
        await again.aclose()
        assert upstream.accepted == 2


# --- 6 and 7. idle connections -----------------------------------------------------------------


async def test_an_idle_connection_older_than_the_keepalive_expiry_is_closed_and_not_reused() -> None:
    async with _Upstream(_ok()) as upstream, _transport(keepalive_expiry_s=0.2) as transport:
        first = await transport.handle_async_request(_request(upstream.url + "/x"))
        await read_body(first)
        await first.aclose()
        idle_from = time.monotonic()
        await _within(upstream.links[0].client_closed.wait(), "the client closing the expired connection")
        assert time.monotonic() - idle_from >= 0.15  # by the expiry, not at once
        second = await transport.handle_async_request(_request(upstream.url + "/x"))
        assert await read_body(second) == b"ok"
        await second.aclose()
        assert upstream.accepted == 2 and len(upstream.links[1].requests) == 1


async def test_an_idle_connection_the_upstream_closed_is_not_reused_and_frees_its_slot() -> None:
    """The upstream ends an idle keep-alive connection and the client has had the time to see it."""
    other_answer = _ok(b"other", extra=b"connection: close\r\n")  # leaves no idle connection behind
    async with (
        _Upstream(_ok()) as upstream,
        _Upstream(other_answer) as other,
        _transport(max_connections=1) as transport,
    ):
        first = await transport.handle_async_request(_request(upstream.url + "/x"))
        await read_body(first)
        await first.aclose()
        await upstream.links[0].close()
        pool = transport._pool
        # Private, to wait for the client to see the close: every idle connection left is closed.
        await _eventually(
            lambda: all(conn.closed for idle in pool._idle.values() for conn in idle), "the client seeing the close"
        )
        # The only slot is free again (well before the keep-alive expiry): another upstream is served.
        elsewhere = await _within(
            transport.handle_async_request(_request(other.url + "/x", pool=0.5)), "the other upstream's answer"
        )
        assert await read_body(elsewhere) == b"other"
        await elsewhere.aclose()
        second = await _within(transport.handle_async_request(_request(upstream.url + "/x")), "the next answer")
        assert await read_body(second) == b"ok"
        await second.aclose()
        assert upstream.accepted == 2


async def test_a_request_right_after_the_upstream_closed_the_idle_connection_succeeds() -> None:
    """The upstream's FIN is already at the client's socket when the next request is sent, but the
    loop has not run the client's read callback yet: the connection must not be used (a check that
    the socket is not readable before reuse, as httpcore does, or a retry on a fresh connection when
    a reused one fails before any byte of the answer)."""
    async with _Upstream(_ok()) as upstream, _transport() as transport:
        first = await transport.handle_async_request(_request(upstream.url + "/x"))
        await read_body(first)
        await first.aclose()
        await upstream.links[0].close()  # returns once the fake's socket is closed
        second = await _within(transport.handle_async_request(_request(upstream.url + "/x")), "the next answer")
        assert await read_body(second) == b"ok"
        await second.aclose()
        assert upstream.accepted == 2


# --- 8. back-pressure --------------------------------------------------------------------------


async def test_a_slow_consumer_holds_back_the_upstream_without_a_read_timeout_and_gets_every_byte() -> None:
    size = 20 * 1024 * 1024
    pattern = bytes(range(256)) * 256  # 64 KiB
    expected = pattern * (size // len(pattern))

    async def large(link: _Link, request: _Request) -> None:
        link.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        for _ in range(size // len(pattern)):
            link.write(pattern)
            await link.drain()

    read_timeout = 0.2
    async with _Upstream(large) as upstream, _transport() as transport:
        response = await transport.handle_async_request(_request(upstream.url + "/x", read=read_timeout))
        chunks = response.aiter_raw()
        received = bytearray(await anext(chunks))
        # The consumer pauses for twice the read timeout (a slow client of the gateway).
        await asyncio.sleep(2 * read_timeout)
        link = upstream.links[0]
        held_for = asyncio.get_running_loop().time() - link.last_progress
        assert link.draining and link.sent < size // 2, f"the upstream wrote {link.sent:,} of {size:,} bytes"
        assert held_for > read_timeout  # the upstream was blocked longer than the read timeout
        assert _connection(response)._buffered <= 1024 * 1024  # the client holds ~256 KiB, not MBs
        try:
            async for chunk in chunks:
                received += chunk
        finally:
            await response.aclose()
        assert len(received) == size and received == expected


async def test_a_complete_answer_closed_unread_while_reading_was_paused_leaves_a_working_connection() -> None:
    """An answer above the pause threshold whose last bytes arrived in the read that paused reading:
    it is complete, so its connection may be pooled; the next request on it must still be read."""
    total = 300 * 1024
    rest = asyncio.Event()

    async def in_two_parts(link: _Link, request: _Request) -> None:
        link.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total + b"a" * (200 * 1024))
        await link.drain()
        await rest.wait()
        link.write(b"b" * (total - 200 * 1024))

    async with _Upstream(_in_turn(in_two_parts, _ok())) as upstream, _transport() as transport:
        response = await transport.handle_async_request(_request(upstream.url + "/x", read=0.3))
        conn = _connection(response)
        await _eventually(lambda: conn._buffered >= 200 * 1024, "the first part in the client")
        rest.set()
        await _eventually(lambda: conn._complete, "the whole answer in the client")
        assert conn._paused  # the scenario: reading paused by the answer's last read
        await response.aclose()  # the consumer goes away without reading
        # The answer comes in milliseconds; the read timeout (0.3 s) would end a hang before 0.6 s anyway.
        again = await _within(
            transport.handle_async_request(_request(upstream.url + "/x", read=0.3)), "the next head", timeout=0.6
        )
        assert await _within(read_body(again), "the next body", timeout=0.6) == b"ok"
        await again.aclose()


# --- 9. proxies --------------------------------------------------------------------------------


async def test_a_url_covered_by_http_proxy_goes_through_the_proxy(
    raw_upstream_factory: Callable[..., RawUpstream], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, target = raw_upstream_factory(), raw_upstream_factory()
    monkeypatch.setenv("http_proxy", proxy.url)
    async with _transport() as transport:  # a fresh one: the route is cached per URL
        response = await transport.handle_async_request(_request(target.url + "/v1/messages?beta=true"))
        assert (await read_body(response)).startswith(b'{"id": "msg_raw"')
        await response.aclose()
    [seen] = proxy.requests
    assert seen.lines[0] == f"POST {target.url}/v1/messages?beta=true HTTP/1.1".encode()
    assert seen.body == b'{"a":1}'
    assert target.requests == []


async def test_no_proxy_for_the_host_sends_it_direct(
    raw_upstream_factory: Callable[..., RawUpstream], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, target = raw_upstream_factory(), raw_upstream_factory()
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    async with _transport() as transport:
        response = await transport.handle_async_request(_request(target.url + "/v1/messages?beta=true"))
        await read_body(response)
        await response.aclose()
    [seen] = target.requests
    assert seen.lines[0] == b"POST /v1/messages?beta=true HTTP/1.1"
    assert proxy.requests == []


# --- 10. cancellation --------------------------------------------------------------------------


async def test_a_request_cancelled_while_waiting_for_the_head_leaves_nothing_behind() -> None:
    async with _Upstream(_in_turn(_HANG, _ok())) as upstream, _transport(max_connections=1) as transport:
        waiting = asyncio.create_task(transport.handle_async_request(_request(upstream.url + "/x")))
        await _eventually(lambda: len(upstream.requests) == 1, "the request at the fake")
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await _within(upstream.links[0].client_closed.wait(), "the client closing the cancelled request's connection")
        # With one connection allowed, this would be a PoolTimeout if the cancelled one kept its slot.
        again = await transport.handle_async_request(_request(upstream.url + "/x", pool=0.5))
        assert await read_body(again) == b"ok"
        await again.aclose()
        assert upstream.accepted == 2


# --- the same on uvloop ------------------------------------------------------------------------

# `gateway serve` runs on uvloop (Sanic's loop), whose transports pause, resume and report a
# closed connection on their own schedule; these scenarios run there too.
_ON_UVLOOP: list[Callable[[], Awaitable[None]]] = [
    test_answers_read_to_the_end_leave_their_connection_for_the_next_request,
    test_an_answer_not_read_to_the_end_closes_its_connection,
    test_an_answer_without_length_ends_at_the_close_of_the_connection_and_is_complete,
    functools.partial(test_silence_in_the_middle_of_a_body_is_read_timeout_after_the_bytes_sent, reads_late=True),
    functools.partial(test_a_connection_cut_mid_body_is_an_error_after_the_bytes_sent, b"content-length: 100\r\n"),
    test_a_request_right_after_the_upstream_closed_the_idle_connection_succeeds,
    test_a_slow_consumer_holds_back_the_upstream_without_a_read_timeout_and_gets_every_byte,
    test_a_complete_answer_closed_unread_while_reading_was_paused_leaves_a_working_connection,
    test_a_request_cancelled_while_waiting_for_the_head_leaves_nothing_behind,
]


def _name(scenario: Callable[[], Awaitable[None]]) -> str:
    function = scenario.func if isinstance(scenario, functools.partial) else scenario
    return str(function.__name__).removeprefix("test_")


@pytest.mark.parametrize("scenario", _ON_UVLOOP, ids=[_name(scenario) for scenario in _ON_UVLOOP])
def test_on_uvloop(scenario: Callable[[], Awaitable[None]]) -> None:
    uvloop = pytest.importorskip("uvloop")
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
