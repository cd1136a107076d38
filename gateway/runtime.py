"""Everything one worker process needs to serve: its rules, HTTP client, credentials, memories."""

from __future__ import annotations

import logging
import time
from typing import Callable

import httpx

from gateway.credentials import CredentialResolver
from gateway.limits import Limits
from gateway.proxy import Exchange, Proxy
from gateway.resilience import ProviderHealth
from gateway.signatures import SignatureStore
from gateway.state import LiveConfig

log = logging.getLogger("gateway")


class Runtime:
    """The per-worker state, created when the worker starts and closed when it stops."""

    def __init__(self, live: LiveConfig, client: httpx.AsyncClient) -> None:
        self.live = live
        self.client = client
        self.credentials = CredentialResolver()
        self.signatures = SignatureStore()
        self.health = ProviderHealth()
        self.limits = Limits()
        self.proxy = Proxy(client, self.credentials, self.signatures, self.health, self.limits)
        # Called with every finished Exchange: the request log, metrics, usage stats.
        self.exchange_listeners: list[Callable[[Exchange], None]] = []

    def finished(self, exchange: Exchange) -> None:
        """Called once per request when the handler ends (also on errors and disconnects)."""
        exchange.finished = time.perf_counter()
        for listener in self.exchange_listeners:
            try:
                listener(exchange)
            except Exception:  # a broken listener must never break serving
                log.exception("exchange listener %r failed", listener)

    async def close(self) -> None:
        await self.client.aclose()
