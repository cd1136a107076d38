"""httpx's transport interface over the gateway's own HTTP/1.1 pool: the way to the upstreams.

The proxy builds ``httpx.Request`` objects and reads ``httpx.Response`` ones (precise
exceptions, an interface tests can swap); ``Transport`` carries them. Measured on the project
machine (ARCHITECTURE.md, "Choosing the transport"), httpx's default transport (httpcore)
reached a quarter of aiohttp's throughput under concurrency, and aiohttp's general client in
turn spent about a quarter of the gateway's CPU per request on what a proxy does not need; so
direct upstreams go through ``gateway.upstream.pool`` (a small HTTP/1.1 client on httptools' parser), and
only an upstream an HTTP(S)_PROXY variable covers goes through ``AiohttpTransport``, which
speaks to proxies. Which one a URL takes is decided once per URL.

``AiohttpTransport`` was written for a proxy's hot path instead of taken from httpx-aiohttp:
URLs and timeouts are converted once, the caller's header list goes to aiohttp as it is, and
each aiohttp failure becomes the httpx exception that says what happened (``ConnectError``,
``ConnectTimeout``, ``ReadTimeout``, ``ReadError``), with the aiohttp error as ``__cause__``.

Bodies are relayed as they are received (no fixed chunk size to fill). The connection of an
answer that was not read to the end is closed, never reused.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import httpx
from yarl import URL

from gateway.upstream.connection import Answer, TooLarge, request_head
from gateway.upstream.pool import Pool

__all__ = ["HEADERS_EXTENSION", "URL_EXTENSION", "AiohttpTransport", "AnswerTooLarge", "Transport", "read_body"]

# An httpx.Request extension: the header list exactly as the gateway built it, so aiohttp gets
# it without a round trip through httpx's byte-encoded, normalised copy.
HEADERS_EXTENSION = "gateway.headers"
# And the URL as the string it was parsed from: the transport's per-URL cache is keyed by it
# without turning httpx.URL back into a string at every request.
URL_EXTENSION = "gateway.url"
_CACHE_LIMIT = 1024


class AnswerTooLarge(httpx.TransportError):
    """An answer read whole that is larger than the caller's limit (the connection is then closed)."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        said = f"declared {declared:,} bytes" if declared is not None else f"sent more than {limit:,} bytes"
        super().__init__(f"{said}; a non-streaming answer is read whole, up to {limit // (1024 * 1024)} MiB")
        self.limit = limit


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body as httpx's stream of raw bytes."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as exc:
            raise _mapped(exc) from exc

    async def read_all(self, limit: int | None = None) -> bytes:
        """The whole body in one call (no async iteration machinery); AnswerTooLarge beyond ``limit``."""
        response = self._response
        try:
            length = response.content_length
            if limit is None or (length is not None and length <= limit):
                return await response.read()  # aiohttp reads no more than the declared length
            if length is not None:
                raise AnswerTooLarge(limit, length)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise AnswerTooLarge(limit)
                chunks.append(chunk)
            return b"".join(chunks)
        except Exception as exc:
            raise _mapped(exc) from exc

    async def aclose(self) -> None:
        # release() returns the connection to the pool only when the body was read to the
        # end; otherwise aiohttp closes it (the upstream sees the client leave).
        self._response.release()


async def _outgoing(request: httpx.Request) -> tuple[Sequence[tuple[str, str]], bytes]:
    """The header list (as the gateway built it, when it did) and the body of ``request``."""
    headers: Sequence[tuple[str, str]] | None = request.extensions.get(HEADERS_EXTENSION)
    if headers is None:
        headers = request.headers.multi_items()
    try:
        return headers, request.content
    except httpx.RequestNotRead:
        return headers, await request.aread()


def _answered(
    request: httpx.Request, status: int, headers: Sequence[tuple[bytes, bytes]], stream: httpx.AsyncByteStream
) -> httpx.Response:
    """The httpx.Response of an answer whose body is still to be read from ``stream``."""
    return httpx.Response(
        status, headers=headers, stream=stream, request=request, extensions={"http_version": b"HTTP/1.1"}
    )


def _mapped(exc: Exception) -> Exception:
    """The httpx exception for an aiohttp failure (the caller chains the original)."""
    message = str(exc) or exc.__class__.__name__
    if isinstance(exc, httpx.HTTPError):
        return exc
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, (aiohttp.ClientConnectionError, OSError)):
        return httpx.ReadError(message)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message)
    return httpx.TransportError(message)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One pooled aiohttp session per worker, behind httpx's transport interface."""

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry_s: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry_s = keepalive_expiry_s
        # httpx's own default context: system CAs, honouring SSL_CERT_FILE / SSL_CERT_DIR.
        self._ssl = ssl_context if ssl_context is not None else httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, tuple[URL, str | None]] = {}
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_expiry_s,
            ssl=self._ssl,
            ttl_dns_cache=300,
        )
        # Not trust_env: with it aiohttp reads ~/.netrc and the proxy variables on every request
        # (in a thread: more than half the CPU under load); the proxy is worked out once per URL.
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    def _url(self, url: httpx.URL) -> tuple[URL, str | None]:
        key = str(url)
        found = self._urls.get(key)
        if found is None:
            if len(self._urls) >= _CACHE_LIMIT:
                self._urls.clear()
            parsed = URL(key, encoded=True)
            found = self._urls[key] = (parsed, _env_proxy(parsed))
        return found

    def _timeout(self, extensions: dict[str, Any]) -> aiohttp.ClientTimeout:
        spec = extensions.get("timeout") or {}
        key = (spec.get("connect"), spec.get("read"), spec.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            # sock_read: the longest silence, before the response head and between bytes;
            # connect: getting a connection, from the pool or new.
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=key[0], sock_read=key[1], connect=key[2]
            )
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session if self._session is not None else self._open()
        headers, content = await _outgoing(request)
        url, proxy = self._url(request.url)
        try:
            response = await session.request(
                request.method,
                url,
                headers=headers,
                data=content or None,
                allow_redirects=False,
                timeout=self._timeout(request.extensions),
                proxy=proxy,
            )
        except Exception as exc:
            raise _mapped(exc) from exc
        return _answered(request, response.status, response.raw_headers, _Body(response))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _env_proxy(url: URL) -> str | None:
    """The proxy HTTP(S)_PROXY / NO_PROXY give for ``url`` (users behind corporate proxies)."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme)
    # proxy_bypass_environment is public in CPython though typeshed does not list it.
    if proxy is None or (url.host and urllib.request.proxy_bypass_environment(url.host, proxies)):  # type: ignore[attr-defined]
        return None
    return proxy


class _H1Body(httpx.AsyncByteStream):
    """An answer of the HTTP/1.1 pool as httpx's stream of raw bytes."""

    __slots__ = ("_answer",)

    def __init__(self, answer: Answer) -> None:
        self._answer = answer

    def __aiter__(self) -> Answer:  # the answer is its own async iterator: no generator layer
        return self._answer

    async def read_all(self, limit: int | None = None) -> bytes:
        try:
            return await self._answer.read_all(limit)
        except TooLarge as exc:
            raise AnswerTooLarge(exc.limit) from None

    async def aclose(self) -> None:
        self._answer.release()


class Transport(httpx.AsyncBaseTransport):
    """The worker's transport: the HTTP/1.1 pool for direct upstreams, aiohttp through a proxy."""

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry_s: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        context = ssl_context if ssl_context is not None else httpx.create_ssl_context
        self._pool = Pool(
            max_connections=max_connections, keepalive_expiry_s=keepalive_expiry_s, ssl_context=context
        )
        # aiohttp's session (and the TLS context it loads) only once a proxied URL is asked for.
        self._proxied: AiohttpTransport | None = None
        self._limits = (max_connections, keepalive_expiry_s)
        self._ssl = ssl_context
        # url -> (origin, request target, Host value), or None: through a proxy.
        self._urls: dict[str, tuple[tuple[str, str, int], str, str] | None] = {}

    def _route(self, url: httpx.URL, key: str) -> tuple[tuple[str, str, int], str, str] | None:
        if key in self._urls:
            return self._urls[key]
        if len(self._urls) >= _CACHE_LIMIT:
            self._urls.clear()
        found: tuple[tuple[str, str, int], str, str] | None = None
        if url.scheme in ("http", "https") and _env_proxy(URL(key, encoded=True)) is None:
            default = 443 if url.scheme == "https" else 80
            port = url.port or default
            host = url.host
            shown = f"[{host}]" if ":" in host else host
            found = ((url.scheme, host, port), url.raw_path.decode("ascii"),
                     shown if port == default else f"{shown}:{port}")
        self._urls[key] = found
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        extensions = request.extensions
        route = self._route(request.url, extensions.get(URL_EXTENSION) or str(request.url))
        if route is None:
            if self._proxied is None:
                connections, expiry = self._limits
                self._proxied = AiohttpTransport(
                    max_connections=connections, keepalive_expiry_s=expiry, ssl_context=self._ssl
                )
            return await self._proxied.handle_async_request(request)
        origin, target, host = route
        headers, content = await _outgoing(request)
        if HEADERS_EXTENSION not in extensions:  # httpx's own list has the Host it made
            headers = [(k, v) for k, v in headers if k.lower() != "host"]
        # The gateway's list ends with content-length (gateway.upstream.client); another
        # caller's body gets its length here, or the upstream would read it as the next request.
        if content and (not headers or headers[-1][0] != "content-length"):
            if not any(name.lower() == "content-length" for name, _ in headers):
                headers = [*headers, ("content-length", str(len(content)))]
        spec = extensions.get("timeout") or {}
        answer = await self._pool.request(
            origin,
            request_head(request.method, target, host, headers),
            content,
            connect_timeout=spec.get("connect"),
            read_timeout=spec.get("read"),
            pool_timeout=spec.get("pool"),
        )
        return _answered(request, answer.status, answer.headers, _H1Body(answer))

    async def aclose(self) -> None:
        await self._pool.aclose()
        if self._proxied is not None:
            await self._proxied.aclose()


async def read_body(response: httpx.Response, limit: int | None = None) -> bytes:
    """The whole raw body of an answer from any transport (one read for ours); AnswerTooLarge beyond ``limit``."""
    stream = response.stream
    if isinstance(stream, (_H1Body, _Body)):
        return await stream.read_all(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if limit is not None and size > limit:
            raise AnswerTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
