"""The HTTP/1.1 client of the upstream leg: keep-alive connections pooled per origin.

The gateway's upstream requests are all alike: a method, a path, a header list the gateway built
itself (hop-by-hop and transport headers already gone), a body in memory; an answer whose bytes
are relayed as they come, or read whole. aiohttp's general client spends most of its time per
request on what a proxy does not need (a session's default headers merged into a multidict,
cookie jars, tracing signals, payload type lookup, redirect and auth machinery, a timer
rescheduled at every chunk): profiled at concurrency 8 it was about a quarter of the gateway's
CPU time. Here a request is one ``transport.writelines`` of a head built in one string and the
body, and the answer is parsed by httptools (the C parser Sanic already uses for requests).

What it keeps of a good client: connections pooled per origin with a keep-alive expiry and a
global limit (waiters queue for a slot), the connection of an answer not read to the end closed
rather than reused, a read timeout as the longest silence (before the head and between body
bytes), a connect timeout, a body delivered with back-pressure (reading pauses while the
consumer has not taken 256 KiB), TLS with the caller's context. Failures are the httpx
exceptions that say what happened: ``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``,
``ReadError``, ``RemoteProtocolError``, ``PoolTimeout``.

Upstreams reached through an HTTP(S)_PROXY are not handled here (the transport in
``gateway.upstream.transport`` sends those through aiohttp, which speaks to proxies). The
connection itself (writing a request, parsing its answer) is ``gateway.upstream.connection``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable

import httpx

from gateway.upstream.connection import Answer, Connection

__all__ = ["Pool"]


class Pool:
    """Keep-alive connections per origin, at most ``max_connections`` open at once.

    A request at the limit waits (up to its pool timeout) for whichever comes first: an idle
    connection to its origin, handed over as it is released, or a free slot for a new one
    (an idle connection to another origin is closed to make it).
    """

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry_s: float,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
    ) -> None:
        self._max = max_connections
        self._expiry = keepalive_expiry_s
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], deque[Connection]] = {}
        self._open = 0  # connections holding a slot: open, idle or in use, or being opened
        # Requests waiting at the limit; a waiter gets a connection to its origin, or None: a
        # slot (already counted in _open) to open its own.
        self._waiters: deque[tuple[tuple[str, str, int], asyncio.Future[Connection | None]]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None

    def _context(self) -> ssl.SSLContext:
        if not isinstance(self._ssl, ssl.SSLContext):
            self._ssl = self._ssl()
        return self._ssl

    async def request(
        self,
        origin: tuple[str, str, int],
        head: bytes,
        body: bytes,
        *,
        connect_timeout: float | None,
        read_timeout: float | None,
        pool_timeout: float | None,
    ) -> Answer:
        """Send one request to ``origin`` (scheme, host, port); the answer once its head is read."""
        conn = self._take(origin)
        if conn is None:
            conn = await self._connect(origin, connect_timeout, pool_timeout)
        try:
            status = await conn.send(head, body, read_timeout)
        except BaseException:
            conn.release()
            raise
        return Answer(status, conn.headers, conn)

    def _take(self, origin: tuple[str, str, int]) -> Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = asyncio.get_running_loop().time()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have been closed
            if not conn.closed and now - conn.idle_since < self._expiry and not conn.has_input():
                return conn
            conn.close()
            self.gone(conn)
        return None

    async def _connect(
        self, origin: tuple[str, str, int], connect_timeout: float | None, pool_timeout: float | None
    ) -> Connection:
        loop = asyncio.get_running_loop()
        if self._open >= self._max:
            waiter: asyncio.Future[Connection | None] = loop.create_future()
            entry = (origin, waiter)
            self._waiters.append(entry)
            try:
                given = await asyncio.wait_for(waiter, pool_timeout)
            except BaseException as exc:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                elif waiter.done() and not waiter.cancelled():
                    self._hand_on(waiter.result())  # it was handed to us as we left: hand it on
                if isinstance(exc, asyncio.TimeoutError):
                    raise httpx.PoolTimeout(f"no upstream connection free within {pool_timeout:g} s") from None
                raise
            if given is not None:
                return given
        else:
            self._open += 1
        scheme, host, port = origin
        try:
            if scheme == "https":
                connecting = loop.create_connection(
                    lambda: Connection(self, origin), host, port, ssl=self._context(), server_hostname=host
                )
            else:
                connecting = loop.create_connection(lambda: Connection(self, origin), host, port)
            try:
                _, conn = await asyncio.wait_for(connecting, connect_timeout)
            except asyncio.TimeoutError:
                raise httpx.ConnectTimeout(f"no connection to {host}:{port} within {connect_timeout:g} s") from None
            except ssl.SSLError as exc:
                raise httpx.ConnectError(f"TLS with {host}:{port} failed: {exc}") from exc
            except OSError as exc:
                raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        except BaseException:
            self._release_slot()
            raise
        return conn

    def _hand_on(self, given: Connection | None) -> None:
        if given is None:
            self._release_slot()
        else:
            self.reuse(given)

    def reuse(self, conn: Connection) -> None:
        """``conn`` is free: to a request waiting for its origin, else idle (or closed for another's)."""
        if self._waiters:
            for entry in self._waiters:
                if entry[0] == conn.origin and not entry[1].done():
                    self._waiters.remove(entry)
                    entry[1].set_result(conn)
                    return
            if any(not waiter.done() for _, waiter in self._waiters):
                conn.close()  # its slot goes to a request for another origin
                self.gone(conn)
                return
        loop = asyncio.get_running_loop()
        conn.idle_since = loop.time()
        self._idle.setdefault(conn.origin, deque()).append(conn)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._expiry, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle longer than the expiry (they hold the upstream's sockets too)."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        left = False
        for idle in self._idle.values():
            while idle and (idle[0].closed or now - idle[0].idle_since >= self._expiry):
                conn = idle.popleft()
                conn.close()
                self.gone(conn)
            left = left or bool(idle)
        if left:
            self._sweeper = asyncio.get_running_loop().call_later(self._expiry, self._sweep)

    def lost(self, conn: Connection) -> None:
        """A connection closed by either side: out of the idle list if it was there, its slot
        free now, whether or not its answer is ever released."""
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)
        self.gone(conn)

    def gone(self, conn: Connection) -> None:
        """``conn`` is closed or dropped: its slot is free (once, whichever path saw it first)."""
        if conn.counted:
            conn.counted = False
            self._release_slot()

    def _release_slot(self) -> None:
        """A slot is free: it passes to the first request still waiting, or back to the pool."""
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._open -= 1

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle.values():
            while idle:
                conn = idle.popleft()
                conn.close()
        self._idle.clear()
