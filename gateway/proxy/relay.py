"""Giving the client the answer a target sent: relayed as it arrives, or whole.

Bytes are relayed as they arrive (``aiter_raw`` -> ``response.send``); the stream observer
reads them only after they were sent, for usage and thinking signatures. Once the client has
bytes the answer is committed: a stream that breaks later ends with an SSE ``error`` event,
never a silent cut. When the client goes away, Sanic cancels the handler task and the
``finally`` blocks close the upstream response at once.

Every answer names who gave it: ``x-gateway-route``, ``x-gateway-provider`` and
``x-gateway-model`` (the upstream model), added to the headers built here (``add_provenance``).

An upstream that compresses although the gateway asked for ``identity`` gets its bytes passed on
as sent, with their ``content-encoding``: the client decodes them. The observers do not read
compressed bytes (that request's usage is unknown), and a broken compressed stream ends without
the gateway's ``error`` event, which would corrupt it.
"""

from __future__ import annotations

import time

import httpx
from sanic import Request
from sanic.response import HTTPResponse

from gateway.errors import sse_error_event
from gateway.proxy.exchange import Attempt, Exchange
from gateway.proxy.failures import network_failure
from gateway.wire.headers import downstream_headers
from gateway.wire.signatures import SignatureStore
from gateway.wire.sse import StreamObserver, observe_message
from rules.model import Provider

__all__ = [
    "MODEL_HEADER",
    "PROVIDER_HEADER",
    "ROUTE_HEADER",
    "add_provenance",
    "is_encoded",
    "is_event_stream",
    "relay_stream",
    "whole_answer",
]

ROUTE_HEADER = "x-gateway-route"
PROVIDER_HEADER = "x-gateway-provider"
MODEL_HEADER = "x-gateway-model"


def add_provenance(headers: dict[str, str], route: str | None, attempt: Attempt) -> dict[str, str]:
    """Name the route, provider and upstream model of ``attempt`` in ``headers``; returns them.

    Route and provider names are restricted by the schema to header-safe characters; a model
    name may come from the client, so one that is not printable ASCII is left out rather than
    risk a broken (or injected) header.
    """
    if route is not None:
        headers[ROUTE_HEADER] = route
    headers[PROVIDER_HEADER] = attempt.provider
    model = attempt.model
    if model.isascii() and model.isprintable():
        headers[MODEL_HEADER] = model
    return headers


def is_event_stream(response: httpx.Response) -> bool:
    """True for an SSE answer (``text/event-stream``): relayed as it arrives."""
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


def is_encoded(response: httpx.Response) -> bool:
    """True when the body is compressed (a content-encoding other than identity)."""
    encoding: str = response.headers.get("content-encoding", "")
    return bool(encoding) and encoding.lower() != "identity"


def whole_answer(
    response: httpx.Response, data: bytes, provider: Provider, exchange: Exchange, signatures: SignatureStore
) -> HTTPResponse:
    """The client's answer for a body read whole; a successful message is observed first."""
    status = response.status_code
    exchange.status = status
    exchange.ttfb = time.perf_counter() - exchange.started
    if status < 300 and exchange.endpoint == "messages" and not is_encoded(response):
        name = provider.name
        seen = observe_message(data, lambda sig: signatures.record(sig, name))
        exchange.input_tokens, exchange.output_tokens = seen.input_tokens, seen.output_tokens
        exchange.cache_read_tokens, exchange.cache_creation_tokens = seen.cache_read_tokens, seen.cache_creation_tokens
    headers = downstream_headers(response.headers.multi_items())
    if exchange.attempts:
        add_provenance(headers, exchange.route, exchange.attempts[-1])
    return HTTPResponse(data, status=status, headers=headers, content_type=None)


async def relay_stream(
    request: Request,
    response: httpx.Response,
    provider: Provider,
    exchange: Exchange,
    signatures: SignatureStore,
) -> None:
    """Relay an event stream to the client chunk by chunk, as the upstream sends it."""
    name = provider.name
    record = signatures.record
    observer = StreamObserver(lambda sig: record(sig, name))
    encoded = is_encoded(response)
    exchange.status = response.status_code
    exchange.stream = True
    error: str | None = None
    try:
        headers = downstream_headers(response.headers.multi_items())
        if exchange.attempts:
            add_provenance(headers, exchange.route, exchange.attempts[-1])
        out = await request.respond(status=response.status_code, headers=headers)
        first = True
        try:
            async for chunk in response.aiter_raw():
                await out.send(chunk)
                if first:
                    exchange.ttfb = time.perf_counter() - exchange.started
                    first = False
                if not encoded:
                    observer.feed(chunk)
        except httpx.HTTPError as exc:
            error = network_failure(exc, provider).detail
    finally:
        await response.aclose()
    observer.finish()
    exchange.input_tokens, exchange.output_tokens = observer.input_tokens, observer.output_tokens
    exchange.cache_read_tokens = observer.cache_read_tokens
    exchange.cache_creation_tokens = observer.cache_creation_tokens
    # Event-stream bytes the gateway can read: labelled so, or a message_start seen (a stream the
    # upstream labelled as something else). Only into those does an error event of ours go.
    readable = not encoded and (is_event_stream(response) or observer.input_tokens is not None)
    if error is None and readable and response.status_code == 200 and not (observer.saw_message_stop or observer.saw_error):
        error = "the stream ended before message_stop"
    if error is not None:
        exchange.error = error
    if error is not None and readable:
        if not observer.at_boundary:
            await out.send(b"\n\n")  # end the partial event so ours parses on its own
        await out.send(sse_error_event("api_error", f"provider '{name}' broke off the stream: {error}"))
    await out.eof()
