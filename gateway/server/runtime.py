"""Everything one worker process needs to serve: its rules, upstream transport, credentials, memories."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gateway.ops.sessions import SessionMemory
from gateway.proxy.count_tokens import CountTokens
from gateway.proxy.exchange import Exchange
from gateway.proxy.forward import Proxy
from gateway.reload.live import LiveConfig
from gateway.upstream.client import Upstream
from gateway.upstream.credentials import CredentialResolver
from gateway.upstream.limits import Limits
from gateway.upstream.provider_health import ProviderHealth
from gateway.upstream.quota import QuotaBook
from gateway.wire.signatures import SignatureStore

__all__ = ["Runtime"]

log = logging.getLogger("gateway")


class Runtime:
    """The per-worker state, created when the worker starts and closed when it stops."""

    def __init__(self, live: LiveConfig, upstream: Upstream) -> None:
        self.live = live
        self.upstream = upstream
        self.credentials = CredentialResolver()
        self.signatures = SignatureStore()
        self.health = ProviderHealth()
        self.limits = Limits()
        self.quota = QuotaBook()
        self.proxy = Proxy(upstream, self.credentials, self.signatures, self.health, self.limits, self.quota)
        self.count_tokens = CountTokens(self.proxy)
        self.sessions = SessionMemory()  # filled by an exchange listener (server/app.py)
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
        await self.upstream.aclose()
