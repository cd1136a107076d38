"""gateway.upstream.transport against real loopback sockets: answers, raw bodies, and what failures become."""

from __future__ import annotations

import aiohttp
import httpx
import pytest
from aiohttp import web

from fakes import BlackHole, closed_port
from gateway.upstream.transport import HEADERS_EXTENSION, AiohttpTransport, read_body


async def _server(handler) -> tuple[web.AppRunner, str]:  # type: ignore[no-untyped-def]
    app = web.Application()
    app.router.add_post("/echo", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def _request(url: str, read: float = 5.0, headers: list[tuple[str, str]] | None = None) -> httpx.Request:
    sent = headers or [("x-test", "1")]
    return httpx.Request(
        "POST", url, headers=sent, content=b'{"a":1}',
        extensions={"timeout": {"connect": 2.0, "read": read, "write": 5.0, "pool": 2.0}, HEADERS_EXTENSION: sent},
    )


async def test_answer_headers_and_raw_body_come_back_and_headers_go_as_given() -> None:
    seen: dict[str, str] = {}

    async def echo(request: web.Request) -> web.Response:
        seen.update(request.headers)
        return web.Response(body=await request.read(), headers={"request-id": "req_1", "content-encoding": "gzip"})

    runner, url = await _server(echo)
    transport = AiohttpTransport(max_connections=10, keepalive_expiry_s=5)
    try:
        response = await transport.handle_async_request(_request(url + "/echo?beta=true"))
        assert response.status_code == 200 and response.headers["request-id"] == "req_1"
        assert await read_body(response) == b'{"a":1}'  # raw: never decoded, whatever content-encoding says
        assert seen["x-test"] == "1" and "Accept-Encoding" not in seen and "User-Agent" not in seen
    finally:
        await transport.aclose()
        await runner.cleanup()


async def test_refused_connection_is_connect_error_with_its_cause() -> None:
    transport = AiohttpTransport(max_connections=10, keepalive_expiry_s=5)
    try:
        with pytest.raises(httpx.ConnectError) as info:
            await transport.handle_async_request(_request(f"http://127.0.0.1:{closed_port()}/x"))
        assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
        assert isinstance(info.value.__cause__.os_error, ConnectionRefusedError)
    finally:
        await transport.aclose()


async def test_silence_before_the_head_is_read_timeout() -> None:
    transport = AiohttpTransport(max_connections=10, keepalive_expiry_s=5)
    with BlackHole() as hole:
        try:
            with pytest.raises(httpx.ReadTimeout):
                await transport.handle_async_request(_request(hole.url + "/x", read=0.3))
        finally:
            await transport.aclose()


async def test_a_body_cut_off_mid_way_is_a_protocol_error_and_an_unread_answer_is_not_reused() -> None:
    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"event: ping\ndata: {}\n\n")
        assert request.transport is not None
        request.transport.close()
        return response

    runner, url = await _server(cut)
    transport = AiohttpTransport(max_connections=10, keepalive_expiry_s=5)
    try:
        response = await transport.handle_async_request(_request(url + "/echo"))
        chunks: list[bytes] = []
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
        assert b"".join(chunks) == b"event: ping\ndata: {}\n\n"
        await response.aclose()
    finally:
        await transport.aclose()
        await runner.cleanup()
