"""Loopback ports for failure tests: a free port, a refused port, and a black hole."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType

from ._loop import LoopThread

# Sockets kept bound (never listening) for the life of the test process: a connect to their
# port is refused, and nobody else can bind the port in the meantime.
_RESERVED: list[socket.socket] = []


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A loopback port where a connect is refused (ECONNREFUSED), reliably.

    A bound socket that never listens answers a SYN with RST, and holding it stops another
    process from binding the port later, so "connection refused" stays true for the whole run.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    _RESERVED.append(sock)
    return int(sock.getsockname()[1])


class _SilentProtocol(asyncio.Protocol):
    def __init__(self, hole: BlackHole) -> None:
        self._hole = hole
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._hole._opened(transport)

    def data_received(self, data: bytes) -> None:
        self._hole._received(len(data))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._hole._closed(self._transport)


class BlackHole:
    """A listener that accepts TCP connections and reads requests but never answers.

    Connect succeeds and the request is swallowed; no response head ever comes, so only a
    client (or gateway) read timeout ends the exchange.
    """

    def __init__(self) -> None:
        self._loop = LoopThread("fake-black-hole")
        self._server: asyncio.AbstractServer | None = None
        self._transports: set[asyncio.Transport] = set()
        self._lock = threading.Condition()
        self.port = 0
        self.accepted = 0
        self.closed = 0
        self.bytes_received = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self.accepted - self.closed

    def start(self) -> BlackHole:
        self._loop.start()
        self._server = self._loop.run(
            self._loop.loop.create_server(lambda: _SilentProtocol(self), "127.0.0.1", 0)
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        server = self._server
        if server is not None:
            self._server = None

            async def close() -> None:
                server.close()
                # Server.close() leaves accepted connections open: drop them ourselves.
                for transport in list(self._transports):
                    transport.abort()

            self._loop.run(close())
        self._loop.stop()

    def wait_for_connections(self, n: int, timeout: float = 5.0) -> int:
        """Block until at least n connections were accepted; return the count."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.accepted < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"black hole accepted {self.accepted} connections, wanted {n}")
                self._lock.wait(remaining)
            return self.accepted

    def _opened(self, transport: asyncio.Transport) -> None:
        with self._lock:
            self._transports.add(transport)
            self.accepted += 1
            self._lock.notify_all()

    def _received(self, size: int) -> None:
        with self._lock:
            self.bytes_received += size
            self._lock.notify_all()

    def _closed(self, transport: asyncio.Transport) -> None:
        with self._lock:
            self._transports.discard(transport)
            self.closed += 1
            self._lock.notify_all()

    def __enter__(self) -> BlackHole:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
