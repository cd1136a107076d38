"""An upstream's error answer: read (bounded), translated for the client, and heeded.

Every answer with a status of 400 or more comes here before the fallback decision, so the
route's ``fallback_on`` sees the status the client would get: a Z.AI 1308 answered as 429
falls back like any 429. The translation itself is pure (``gateway.wire.errors``); here its
meaning for admission is applied to the credential that got the answer: a plan limit's reset
becomes a cooldown (``ProviderHealth.cool_down``), arrears or an expired plan an unusable
credential (``ProviderHealth.mark_unusable``). Successful answers never come here.
"""

from __future__ import annotations

import time

import httpx
from sanic.response import HTTPResponse

from gateway.proxy.exchange import Exchange
from gateway.proxy.failures import UpstreamAnswer
from gateway.upstream.provider_health import ProviderHealth
from gateway.wire.errors import dialect, translate
from gateway.wire.headers import downstream_headers
from rules.model import Provider

__all__ = ["ERROR_BODY_LIMIT", "read_error", "refusal", "respond"]

# An error body is read up to this: enough for any provider's error, never a whole page. A longer
# body is cut, no longer parses, and reaches the client as an excerpt in Anthropic's shape.
ERROR_BODY_LIMIT = 64 * 1024


async def read_error(response: httpx.Response) -> bytes:
    """The error answer's body, at most about ``ERROR_BODY_LIMIT`` bytes; closes the response."""
    data = bytearray()
    try:
        async for chunk in response.aiter_raw():
            data += chunk
            if len(data) >= ERROR_BODY_LIMIT:
                break
    finally:
        await response.aclose()
    return bytes(data)


def refusal(
    status: int,
    data: bytes,
    headers: httpx.Headers,
    provider: Provider,
    credential: str,
    health: ProviderHealth,
) -> tuple[UpstreamAnswer, str]:
    """The client's answer for ``provider``'s error answer, and a note on what was translated.

    An Anthropic-shaped answer comes back as it came (status, bytes, headers) with an empty
    note; a foreign one in Anthropic's shape, and its limit applied to ``credential`` (the
    fingerprint the cooldowns are kept by).
    """
    now = time.time()
    translation = translate(status, data, provider=provider.name, dialect=dialect(provider), now=now)
    client_headers = downstream_headers(headers.multi_items())
    if translation is None:
        return (status, data, client_headers), ""
    replaced = {"content-type", "content-length", *translation.headers}
    kept = {k: v for k, v in client_headers.items() if k.lower() not in replaced}
    kept["content-type"] = "application/json"
    kept.update(translation.headers)
    if translation.cool_until is not None:
        health.cool_down(provider.name, credential, translation.cool_until, translation.status, translation.reason)
    if translation.unusable:
        health.mark_unusable(provider.name, credential, translation.reason)
    return (translation.status, translation.body, kept), translation.reason


def respond(answer: UpstreamAnswer, exchange: Exchange) -> HTTPResponse:
    """The client's response for an upstream error answer (translated or not)."""
    status, data, headers = answer
    exchange.status = status
    exchange.ttfb = time.perf_counter() - exchange.started
    return HTTPResponse(data, status=status, headers=headers, content_type=None)
