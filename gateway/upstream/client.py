"""Sending one request upstream: httpx's Request/Response API over its transport interface.

``httpx.AsyncClient.send`` wraps every request in layers a proxy does not want: URL and header
merging with client defaults, auth and redirect loops, and a cookie jar shared by every request
of the worker (so a Set-Cookie from one upstream answer would ride along on later requests,
whoever sent them). Profiles of the gateway under load showed those layers at about a fifth of
its CPU time. So requests are built as ``httpx.Request`` and handed straight to the worker's
transport (gateway.upstream.transport), and answers are read raw (no decoder chain: the gateway asks
for identity encoding).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from gateway.upstream.transport import HEADERS_EXTENSION, URL_EXTENSION

__all__ = ["Upstream"]

# Distinct upstream URLs are few (base URL x endpoint x query); parsed once each.
_URL_CACHE_LIMIT = 1024


class Upstream:
    """The worker's way out: one pooled transport, parsed URLs cached."""

    __slots__ = ("_transport", "_urls")

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport
        self._urls: dict[str, httpx.URL] = {}

    def request(
        self,
        url: str,
        headers: Sequence[tuple[str, str]],
        content: bytes,
        timeout: dict[str, float | None],
    ) -> httpx.Request:
        """A POST of ``content`` to ``url`` with exactly ``headers`` plus Content-Length.

        Built with ``stream=`` rather than ``content=``: httpx then skips its content encoding
        step and a second pass over the headers (76 -> 27 us for a Claude Code request). The
        transport sets Host from the URL.
        """
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _URL_CACHE_LIMIT:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        sent = [*headers, ("content-length", str(len(content)))]
        request = httpx.Request(
            "POST",
            parsed,
            headers=sent,
            stream=httpx.ByteStream(content),
            extensions={"timeout": timeout, HEADERS_EXTENSION: sent, URL_EXTENSION: url},
        )
        request.read()  # the body is in memory already: this only marks it read (no copy)
        return request

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the answer's body is not read yet (stream it, or ``transport.read_body``)."""
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()

