"""One upstream HTTP/1.1 connection: a request written in one call, its answer parsed by httptools.

The pieces the pool (``gateway.upstream.pool``) is made of: ``Connection`` (an asyncio
protocol that sends one request at a time and parses its answer), ``Answer`` (what a request
gets back: status, raw headers, the body as it arrives) and ``request_head``. Failures are the
httpx exceptions that say what happened; their messages complete "<base URL> ..." in the
request log and in the client's error.
"""

from __future__ import annotations

import asyncio
import select
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import httptools
import httpx

__all__ = ["Answer", "Connection", "Owner", "TooLarge", "request_head"]

_PAUSE_AT = 256 * 1024  # bytes the consumer has not taken yet before reading pauses
_NO_BODY_STATUS = frozenset({204, 304})


class Owner(Protocol):
    """What a connection tells its pool (``gateway.upstream.pool.Pool``)."""

    def reuse(self, conn: Connection) -> None:
        """``conn`` answered in full and may be reused."""

    def gone(self, conn: Connection) -> None:
        """``conn`` is closed or dropped: its slot is free."""

    def lost(self, conn: Connection) -> None:
        """``conn`` was closed by either side, maybe while idle: its slot is free."""


class Connection(asyncio.Protocol):
    """One upstream connection: sends one request at a time and parses its answer."""

    def __init__(self, pool: Owner, origin: tuple[str, str, int]) -> None:
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._loop = asyncio.get_running_loop()
        self._parser: Any = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._head: asyncio.Future[int] | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._complete = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._keep_alive = False
        self._until_close = False
        self._read_timeout: float | None = None
        self._last_data = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.counted = True  # holds one of the pool's slots until it is closed or dropped
        self._fd = -1

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        sock = transport.get_extra_info("socket")
        self._fd = sock.fileno() if sock is not None else -1

    def data_received(self, data: bytes) -> None:
        self._last_data = self._loop.time()
        parser = self._parser
        if parser is None:  # bytes nobody asked for (an idle connection): it cannot be reused
            self.close()
            return
        if self._complete:  # bytes after the answer ended: the connection is not reused
            self._keep_alive = False
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"sent an answer that is not valid HTTP/1.1 ({exc})"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.lost(self)
        if self._parser is None or self._complete:
            return
        if self._until_close and self._head is not None and self._head.done() and exc is None:
            self._finish(keep_alive=False)  # a body delimited by the end of the connection
            return
        # The messages complete "<base URL> ..." in the request log and the client's error.
        answered = self._head is not None and self._head.done()
        if exc is not None:
            error: Exception = httpx.ReadError(
                f"broke off its answer ({exc})" if answered else f"broke the connection without answering ({exc})"
            )
            error.__cause__ = exc
        elif answered:
            error = httpx.RemoteProtocolError("broke off its answer (it closed the connection)")
        else:
            error = httpx.RemoteProtocolError("closed the connection without answering")
        self._fail(error)

    def pause_writing(self) -> None:  # a large body to a slow upstream: the kernel buffers it
        pass

    def resume_writing(self) -> None:
        pass

    # --- httptools callbacks -----------------------------------------------------------------

    # httptools goes on parsing after an answer ends when more bytes came in the same read:
    # they belong to no request, so they are dropped and the connection is not reused.

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._complete:
            self._keep_alive = False
            return
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._complete:
            return
        parser = self._parser
        status = parser.get_status_code()
        if 100 <= status < 200:  # an interim answer: the real one follows
            self._headers = []
            return
        if status not in _NO_BODY_STATUS:
            names = {name.lower() for name, _ in self._headers}
            self._until_close = b"content-length" not in names and b"transfer-encoding" not in names
        head = self._head
        if head is not None and not head.done():
            head.set_result(status)

    def on_body(self, body: bytes) -> None:
        if self._complete:
            self._keep_alive = False
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered >= _PAUSE_AT and not self._paused and self.transport is not None:
            # The consumer (a slow client) is behind: stop reading, so the upstream's bytes
            # wait in the kernel and in the upstream, not in this process. Silence while
            # paused is ours, not the upstream's: the read timeout does not count it.
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._complete or self._head is None or not self._head.done():  # or an interim answer's end
            return
        self._finish(keep_alive=bool(self._parser.should_keep_alive()))

    # --- one exchange ------------------------------------------------------------------------

    def send(self, head: bytes, body: bytes, read_timeout: float | None) -> asyncio.Future[int]:
        """Write the request; the returned future gets the answer's status."""
        self._parser = httptools.HttpResponseParser(self)
        self._headers = []
        self._chunks.clear()
        self._buffered = 0
        self._complete = False
        self._error = None
        self._keep_alive = False
        self._until_close = False
        self._head = self._loop.create_future()
        self._read_timeout = read_timeout
        self._last_data = self._loop.time()
        if read_timeout is not None:
            self._timer = self._loop.call_at(self._last_data + read_timeout, self._check_silence)
        assert self.transport is not None
        if body:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head)
        return self._head

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return self._headers

    def has_input(self) -> bool:
        """Whether an idle connection's socket has something to read: the upstream closed it (or
        sent what nobody asked for) and the event loop has not seen it yet. Then it is not reused."""
        if self._fd < 0:
            return False
        try:
            return bool(select.select((self._fd,), (), (), 0)[0])
        except (OSError, ValueError):
            return True

    def _check_silence(self) -> None:
        self._timer = None
        if self._complete or self._error is not None or self._read_timeout is None:
            return
        now = self._loop.time()
        if self._paused:
            self._last_data = now
        due = self._last_data + self._read_timeout
        if now < due:
            self._timer = self._loop.call_at(due, self._check_silence)
            return
        self._fail(httpx.ReadTimeout(f"sent nothing for {self._read_timeout:g} s"))
        self.close()

    def _finish(self, keep_alive: bool) -> None:
        self._complete = True
        self._keep_alive = keep_alive and not self._until_close
        self._cancel_timer()
        self._wake()

    def _fail(self, error: Exception) -> None:
        if self._complete or self._error is not None:
            return
        self._error = error
        self._cancel_timer()
        head = self._head
        if head is not None and not head.done():
            head.set_exception(error)
        self._wake()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def next_chunk(self) -> bytes | None:
        """The answer's next body bytes as they arrive, None at its end; raises the connection's
        error where it happened. A coroutine rather than an async generator: relaying a stream
        calls it per chunk, and each layer of generators costs a frame switch."""
        queue = self._chunks
        while True:
            if queue:
                chunk = queue.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < _PAUSE_AT and self.transport is not None:
                    self._paused = False
                    self._last_data = self._loop.time()
                    self.transport.resume_reading()
                return chunk
            if self._complete:
                return None
            if self._error is not None:
                raise self._error
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def read_all(self, limit: int | None) -> bytes:
        """The whole body; ``limit`` is checked by the caller's error (AnswerTooLarge) via None."""
        parts: list[bytes] = []
        size = 0
        while (chunk := await self.next_chunk()) is not None:
            size += len(chunk)
            if limit is not None and size > limit:
                raise TooLarge(limit)
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self) -> None:
        """The answer is done with: pool the connection if it was read to the end, else close it."""
        self._cancel_timer()
        self._parser = None
        if self._complete and self._keep_alive and not self.closed and self._error is None:
            self._chunks.clear()  # what the consumer did not take of a complete answer
            self._buffered = 0
            if self._paused and self.transport is not None:
                self._paused = False
                self.transport.resume_reading()
            self.pool.reuse(self)
        else:
            self.close()
            self.pool.gone(self)


class TooLarge(Exception):
    """An answer read whole that is larger than the reader's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class Answer:
    """An upstream answer: status and raw headers now, the body when asked for."""

    __slots__ = ("status", "headers", "_conn", "_released")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], conn: Connection) -> None:
        self.status = status
        self.headers = headers
        self._conn = conn
        self._released = False

    def __aiter__(self) -> Answer:
        return self

    async def __anext__(self) -> bytes:
        """The body's next bytes as they arrive; at its end the connection goes back to the pool.

        A failure (or a cancellation) closes the connection at once: whoever reads need not
        remember to close the answer for the connection's slot to be freed.
        """
        try:
            chunk = await self._conn.next_chunk()
        except BaseException:
            self.release()
            raise
        if chunk is None:
            self.release()
            raise StopAsyncIteration
        return chunk

    async def read_all(self, limit: int | None = None) -> bytes:
        """The whole body (then the connection is pooled); ``TooLarge`` beyond ``limit`` bytes.

        On any failure the connection is closed, as by ``__anext__``.
        """
        try:
            return await self._conn.read_all(limit)
        finally:
            self.release()

    def release(self) -> None:
        """Done with the answer: its connection is pooled if it was read to the end, else closed."""
        if not self._released:
            self._released = True
            self._conn.release()

    def __del__(self) -> None:
        # An answer dropped unread and unreleased (a caller's bug) must not hold its socket.
        if not self._released:
            self._released = True
            try:
                self._conn.close()
                self._conn.pool.gone(self._conn)
            except Exception:  # noqa: BLE001 - at interpreter exit the loop may be gone already
                pass


def request_head(method: str, target: str, host: str, headers: Sequence[tuple[str, str]]) -> bytes:
    """The request head: the request line, Host, then ``headers`` as given.

    Header values are encoded back to the bytes the client sent (Sanic decodes them as UTF-8 with
    surrogate escapes). A CR or LF anywhere but between lines would split a header in two: such
    a head is refused (the edge and the credential checks refuse them earlier; this is the last
    line).
    """
    lines = [f"{method} {target} HTTP/1.1\r\nhost: {host}\r\n"]
    for name, value in headers:
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    if text.count("\n") != len(headers) + 3 or text.count("\r") != len(headers) + 3:
        raise httpx.LocalProtocolError("a header name or value holds a line break; it is not sent")
    return text.encode("utf-8", "surrogateescape")
