"""A bare pass-through proxy: the floor a Python hop can reach, for the gateway to be compared with.

    python benchmarks/bare_proxy.py --upstream http://127.0.0.1:9100 --port 8090 \
        [--kind aiohttp|sanic-httpx-aiohttp|sanic-aiohttp] [--workers N]

It forwards POST /v1/messages and /v1/messages/count_tokens (query string kept) to the
upstream with the client's headers minus hop-by-hop ones, relays an SSE response chunk by chunk
as it arrives and any other response whole; GET /health answers locally. No routing, no policy,
no body parsing: whatever the gateway adds on top of this is the cost of its features.

Kinds:
- aiohttp: aiohttp.web server + one pooled aiohttp client session per process.
- sanic-httpx-aiohttp: Sanic + httpx.AsyncClient over httpx_aiohttp.AiohttpTransport (the
  gateway's stack, ARCHITECTURE.md "Choosing the transport"), access log off.
- sanic-aiohttp: Sanic + a plain aiohttp client session, to tell Sanic's cost from httpx's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
from functools import partial
from typing import Any

import aiohttp
import uvloop

# Hop-by-hop headers (RFC 9110 section 7.6.1) plus the ones the client library recomputes.
DROP_REQUEST = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# What a Messages API client needs back; everything else (date, server, ...) is the proxy's own.
KEEP_RESPONSE = ("content-type", "request-id", "retry-after", "cache-control")
PROXIED = ("/v1/messages", "/v1/messages/count_tokens")
HEALTH = b'{"status":"ok"}'
BAD_GATEWAY = b'{"type":"error","error":{"type":"api_error","message":"bare proxy: upstream failed"}}'


def _forward_headers(items: Any) -> dict[str, str]:
    return {k: v for k, v in items if k.lower() not in DROP_REQUEST}


def _response_headers(headers: Any) -> dict[str, str]:
    return {k: headers[k] for k in KEEP_RESPONSE if k in headers}


# aiohttp kind


def run_aiohttp(upstream: str, host: str, port: int, reuse_port: bool) -> None:
    """Serve with aiohttp.web in this process until interrupted."""
    from aiohttp import web

    async def on_startup(app: web.Application) -> None:
        # limit=0: 1,000 concurrent streams must not queue for a pooled connection.
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        app["session"] = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=600),
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def health(request: web.Request) -> web.Response:
        return web.Response(body=HEALTH, content_type="application/json")

    async def proxy(request: web.Request) -> web.StreamResponse:
        session: aiohttp.ClientSession = request.app["session"]
        body = await request.read()
        headers = _forward_headers(request.headers.items())
        try:
            upstream_resp = await session.post(upstream + request.path_qs, data=body, headers=headers)
        except aiohttp.ClientError:
            return web.Response(status=502, body=BAD_GATEWAY, content_type="application/json")
        async with upstream_resp:
            out_headers = _response_headers(upstream_resp.headers)
            if upstream_resp.content_type == "text/event-stream":
                out = web.StreamResponse(status=upstream_resp.status, headers=out_headers)
                await out.prepare(request)
                async for chunk in upstream_resp.content.iter_any():
                    await out.write(chunk)
                await out.write_eof()
                return out
            data = await upstream_resp.read()
            return web.Response(status=upstream_resp.status, body=data, headers=out_headers)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/health", health)
    for path in PROXIED:
        app.router.add_post(path, proxy)
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        print=None,
        backlog=4096,
        reuse_port=reuse_port,
        loop=uvloop.new_event_loop(),
        handle_signals=True,
    )


def serve_aiohttp(upstream: str, host: str, port: int, workers: int) -> None:
    """One process, or N forked processes sharing the port with SO_REUSEPORT."""
    if workers <= 1:
        run_aiohttp(upstream, host, port, reuse_port=False)
        return
    procs = [
        multiprocessing.Process(target=run_aiohttp, args=(upstream, host, port, True))
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        for proc in procs:
            proc.join()


# sanic-httpx-aiohttp kind


def create_sanic_app(upstream: str, use_httpx: bool = True) -> Any:
    """The Sanic app; built in every worker process by Sanic's AppLoader.

    With `use_httpx` false the client is a plain aiohttp session: Sanic's cost without httpx's.
    """
    import httpx
    from sanic import Request, Sanic
    from sanic.response import HTTPResponse, raw

    app = Sanic("bare_proxy")
    app.config.RESPONSE_TIMEOUT = 600
    app.config.REQUEST_MAX_SIZE = 64 * 1024 * 1024
    app.config.KEEP_ALIVE_TIMEOUT = 60

    def make_session() -> aiohttp.ClientSession:
        # The transport's own session caps at 100 connections when given no limit; streams
        # must not queue, so hand it an unlimited one.
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    @app.before_server_start
    async def start_client(app: Sanic) -> None:
        if use_httpx:
            try:
                # The floor ARCHITECTURE.md's transport measurements name; the gateway no longer depends on it.
                from httpx_aiohttp import AiohttpTransport
            except ImportError:
                raise SystemExit("the bare-sanic target needs httpx-aiohttp: pip install httpx-aiohttp") from None
            app.ctx.client = httpx.AsyncClient(
                transport=AiohttpTransport(client=make_session),
                timeout=httpx.Timeout(600.0, connect=10.0),
            )
        else:
            app.ctx.session = make_session()

    @app.after_server_stop
    async def stop_client(app: Sanic) -> None:
        if use_httpx:
            await app.ctx.client.aclose()
        else:
            await app.ctx.session.close()

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        return raw(HEALTH, content_type="application/json")

    async def proxy(request: Request) -> HTTPResponse | None:
        client: httpx.AsyncClient = request.app.ctx.client
        url = upstream + request.path
        if request.query_string:
            url += "?" + request.query_string
        upstream_request = client.build_request(
            "POST", url, content=request.body, headers=_forward_headers(request.headers.items())
        )
        try:
            resp = await client.send(upstream_request, stream=True)
        except httpx.HTTPError:
            return raw(BAD_GATEWAY, status=502, content_type="application/json")
        try:
            out_headers = _response_headers(resp.headers)
            content_type = out_headers.pop("content-type", "application/json")
            if content_type.startswith("text/event-stream"):
                out = await request.respond(
                    status=resp.status_code, headers=out_headers, content_type=content_type
                )
                async for chunk in resp.aiter_raw():
                    await out.send(chunk)
                await out.eof()
                return None
            data = await resp.aread()
            return raw(data, status=resp.status_code, headers=out_headers, content_type=content_type)
        finally:
            await resp.aclose()

    async def proxy_aiohttp(request: Request) -> HTTPResponse | None:
        session: aiohttp.ClientSession = request.app.ctx.session
        url = upstream + request.path
        if request.query_string:
            url += "?" + request.query_string
        try:
            resp = await session.post(
                url, data=request.body, headers=_forward_headers(request.headers.items())
            )
        except aiohttp.ClientError:
            return raw(BAD_GATEWAY, status=502, content_type="application/json")
        async with resp:
            out_headers = _response_headers(resp.headers)
            content_type = out_headers.pop("content-type", "application/json")
            if content_type.startswith("text/event-stream"):
                out = await request.respond(
                    status=resp.status, headers=out_headers, content_type=content_type
                )
                async for chunk in resp.content.iter_any():
                    await out.send(chunk)
                await out.eof()
                return None
            data = await resp.read()
            return raw(data, status=resp.status, headers=out_headers, content_type=content_type)

    handler = proxy if use_httpx else proxy_aiohttp
    for path in PROXIED:
        app.add_route(handler, path, methods=["POST"], name=path.strip("/").replace("/", "_"))
    return app


def serve_sanic(upstream: str, host: str, port: int, workers: int, use_httpx: bool) -> None:
    """One worker: a single process (as `gateway serve` runs it). N: Sanic's worker manager."""
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    loader = AppLoader(factory=partial(create_sanic_app, upstream, use_httpx))
    app = loader.load()
    # The manager adds a main process, a multiprocessing manager and a resource tracker: about
    # 100 MB of RSS that one worker does not need, and that would blur the memory figure.
    app.prepare(
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        motd=False,
        backlog=4096,
        single_process=workers == 1,
    )
    if workers == 1:
        Sanic.serve_single(primary=app)
    else:
        Sanic.serve(primary=app, app_loader=loader)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:9100")
    parser.add_argument(
        "--kind", choices=("aiohttp", "sanic-httpx-aiohttp", "sanic-aiohttp"), default="aiohttp"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    upstream = args.upstream.rstrip("/")
    # Fail fast on a port that is taken, before any worker starts.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((args.host, args.port))
    if args.kind == "aiohttp":
        serve_aiohttp(upstream, args.host, args.port, args.workers)
    else:
        serve_sanic(upstream, args.host, args.port, args.workers, args.kind == "sanic-httpx-aiohttp")


if __name__ == "__main__":
    main()
