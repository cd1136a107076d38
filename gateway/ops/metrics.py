"""The counters behind ``GET /metrics`` and ``GET /stats``: Prometheus counters and histograms of what the gateway did.

Every finished request (an ``Exchange``) is counted by route, provider, upstream model and
status; its total time and time to first byte go into histograms; its tokens into counters by
provider and model. Fallbacks, upstream attempts, client-key refusals, provider cooldowns and
circuits, config reloads and the config generation are counted too.

Several workers: ``gateway serve --workers N`` runs N processes, and a scrape reaches one of
them. So the main process creates a directory and sets ``PROMETHEUS_MULTIPROC_DIR`` before any
worker starts (``multiprocess_directory``); each worker's prometheus-client then keeps its
values in memory-mapped files there, and whichever worker answers a scrape sums them all
(``MultiProcessCollector``). With one worker, values stay in process memory. The directory is
removed when the main process exits.

The cost lands after the response: ``observe`` runs from the request's exchange listener,
which gateway.ops.requestlog defers until the answer was written. Counter increments are summed in
a plain dict and handed to prometheus-client once a second (``flush``; also before this worker
answers /metrics or /stats, and when it stops): most requests share their labels, so a request
costs a few dict updates instead of a locked (or, with several workers, memory-mapped) write
per counter. A scrape may thus miss up to a second of another worker's counts. Histograms are
observed directly, through children cached per label tuple.
Model names come from clients, so each provider keeps at most ``MAX_MODELS`` distinct model
labels per process; the rest are counted as ``other``.

Quota: what the latest answer said about each credential's plan windows
(``gateway.upstream.quota``) becomes two gauges per (provider, credential digest, window),
copied on the flush after it arrived. With several workers they are ``mostrecent`` gauges: the
value a worker set last wins, so after a window resets its fresh, lower figure replaces the old
one (``max`` would keep showing the week's peak from whichever worker saw it). At most
``MAX_CREDENTIALS`` credentials per provider get series per process; the others are in /health only.

Hooks for other modules (they may be called before or without a Metrics instance):
``reloaded(ok, generation=None)`` for the config watcher, ``provider_event(kind, provider)``
for gateway.upstream.provider_health listeners.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from gateway.proxy.exchange import Exchange
    from gateway.upstream.quota import Quota

__all__ = [
    "ENV",
    "MAX_CREDENTIALS",
    "MAX_MODELS",
    "Metrics",
    "instance",
    "multiprocess_directory",
    "provider_event",
    "reloaded",
]

ENV = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_INTERVAL_S = 1.0
MAX_MODELS = 64
MAX_CREDENTIALS = 64
OTHER = "other"
NONE = "none"  # no route / no provider was involved (404 no route, refused before any attempt)

# LLM calls take from milliseconds (count_tokens) to many minutes (long streams).
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_TTFB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@contextmanager
def multiprocess_directory(workers: int, env: MutableMapping[str, str] | None = None) -> Iterator[str | None]:
    """For ``workers > 1``: a fresh directory in ``env[ENV]`` for the workers' metric files.

    Call in the main process before any worker starts; the directory is removed on exit. With
    one worker, ``ENV`` is unset meanwhile (one process needs no files) and None is yielded.
    ``env`` is as it was afterwards.
    """
    env = os.environ if env is None else env
    previous = env.pop(ENV, None)
    directory = tempfile.mkdtemp(prefix="gateway-metrics-") if workers > 1 else None
    if directory is not None:
        env[ENV] = directory
    try:
        yield directory
    finally:
        env.pop(ENV, None)
        if previous is not None:
            env[ENV] = previous
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


class Metrics:
    """The metric families of this process and the bookkeeping to fill them from exchanges."""

    def __init__(self) -> None:
        # Imported here, not at the top: prometheus-client picks its value class (in memory or
        # in files) from ENV when first imported, and the main process sets or clears ENV
        # (multiprocess_directory) after importing this module.
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
            values,
        )
        from prometheus_client.multiprocess import MultiProcessCollector

        # `_created` series exist only in single-process mode: leave them out, so one worker
        # and several expose the same series.
        disable_created_metrics()  # type: ignore[no-untyped-call]

        # Whatever prometheus-client chose decides how we read the values back.
        self.multiprocess: bool = getattr(values.ValueClass, "_multiprocess", False)
        own: CollectorRegistry | None
        if self.multiprocess:
            # The families live in files and are read back by the collector; registering them
            # as well would count everything twice.
            own = None
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        else:
            own = self.registry = CollectorRegistry()

        self.requests = Counter(
            "gateway_requests", "Requests answered, by endpoint, route, provider that answered, upstream model and status.",
            ["endpoint", "route", "provider", "model", "status"], registry=own,
        )
        self.errors = Counter(
            "gateway_request_errors", "Requests answered with an error status or a stream that ended with an error event.",
            ["provider", "model"], registry=own,
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds", "Time from the request's arrival to its last byte sent.",
            ["endpoint", "provider", "stream"], buckets=_DURATION_BUCKETS, registry=own,
        )
        self.ttfb = Histogram(
            "gateway_time_to_first_byte_seconds", "Time from the request's arrival to the first byte sent to the client.",
            ["endpoint", "provider", "stream"], buckets=_TTFB_BUCKETS, registry=own,
        )
        self.tokens = Counter(
            "gateway_tokens", "Tokens reported by the upstream's usage, by provider, upstream model and direction.",
            ["provider", "model", "direction"], registry=own,
        )
        self.attempts = Counter(
            "gateway_upstream_attempts", "Tries of a route's targets; result is the upstream status or what failed "
            "(connect, timeout, read, credential, skipped for a cooldown, policy).",
            ["provider", "result"], registry=own,
        )
        self.fallbacks = Counter(
            "gateway_fallbacks", "Times a target failed (or was skipped) and the request moved on to the next target.",
            ["route", "provider", "model", "reason"], registry=own,
        )
        self.spills = Counter(
            "gateway_spills", "Times a target with spill_at stepped aside because its credential's quota "
            "window was at or above the value; the next target took the request.",
            ["route", "provider", "window"], registry=own,
        )
        self.quota_utilization = Gauge(
            "gateway_quota_utilization", "A Claude plan window's utilization (0..1) in the latest answer for that "
            "credential (anthropic-ratelimit-unified-*).",
            ["provider", "credential", "window"], registry=own, multiprocess_mode="mostrecent",
        )
        self.quota_reset = Gauge(
            "gateway_quota_reset_timestamp_seconds", "When that plan window resets (Unix time), per the latest answer.",
            ["provider", "credential", "window"], registry=own, multiprocess_mode="mostrecent",
        )
        self.refusals = Counter(
            "gateway_client_key_refusals", "Requests refused with 401 for a missing or wrong x-gateway-key.",
            ["reason"], registry=own,
        )
        self.health_events = Counter(
            "gateway_provider_health_events", "Provider cooldowns and circuits starting and ending "
            "(cooldown, cooldown_end, circuit_open, circuit_close).",
            ["provider", "event"], registry=own,
        )
        self.reloads = Counter(
            "gateway_config_reloads", "Config reloads applied (ok) or rejected (failed, the previous config kept serving).",
            ["result"], registry=own,
        )
        self.generation = Gauge(
            "gateway_config_generation", "Generation of the config served: 1 at start, +1 per applied reload.",
            registry=own, multiprocess_mode="max",
        )
        self.started = Gauge(
            "gateway_start_time_seconds", "When the gateway started (Unix time; the earliest worker).",
            registry=own, multiprocess_mode="min",
        )
        self.started.set(time.time())
        self.generation.set(1)
        self._children: dict[tuple[Any, ...], Any] = {}
        self._models: dict[str, set[str]] = {}
        self._pending: dict[tuple[Any, tuple[str, ...]], float] = {}  # counter increments not yet flushed
        self._quotas: dict[tuple[str, str], Quota] = {}  # quota states not yet copied into the gauges
        self._credentials: dict[str, set[str]] = {}
        self._timer: asyncio.TimerHandle | None = None

    # --- cached children ---------------------------------------------------------------------

    def _child(self, family: Any, *labels: str) -> Any:
        key = (id(family), *labels)
        child = self._children.get(key)
        if child is None:
            child = family.labels(*labels)
            self._children[key] = child
        return child

    def _add(self, family: Any, labels: tuple[str, ...], amount: float = 1.0) -> None:
        key = (family, labels)
        pending = self._pending
        pending[key] = pending.get(key, 0.0) + amount

    def flush(self) -> None:
        """Hand the summed counter increments to prometheus-client."""
        pending, self._pending = self._pending, {}
        for (family, labels), amount in pending.items():
            self._child(family, *labels).inc(amount)
        if self._quotas:
            quotas, self._quotas = self._quotas, {}
            for quota in quotas.values():
                self._set_quota(quota)

    def start(self) -> None:
        """Flush every FLUSH_INTERVAL_S on the running loop (so other workers' scrapes see us)."""
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.flush()
            self._timer = loop.call_later(FLUSH_INTERVAL_S, tick)

        if self._timer is None:
            self._timer = loop.call_later(FLUSH_INTERVAL_S, tick)

    def stop(self) -> None:
        """Flush what is left and stop the timer (the worker is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()

    def _model(self, provider: str, model: str) -> str:
        seen = self._models.get(provider)
        if seen is None:
            seen = self._models[provider] = set()
        if model in seen:
            return model
        if len(seen) >= MAX_MODELS:
            return OTHER
        seen.add(model)
        return model

    # --- recording ---------------------------------------------------------------------------

    def observe(self, exchange: Exchange) -> None:
        """Count one finished request."""
        attempts = exchange.attempts
        used = exchange.used
        if used is not None:
            provider, model = used.provider, used.model
        elif attempts:
            provider, model = attempts[-1].provider, attempts[-1].model
        else:
            provider, model = NONE, exchange.model or NONE
        model = self._model(provider, model)
        route = exchange.route or NONE
        endpoint = exchange.endpoint
        status = exchange.status
        add = self._add
        add(self.requests, (endpoint, route, provider, model, str(status)))
        if status >= 400 or exchange.error is not None:
            add(self.errors, (provider, model))
        stream = "true" if exchange.stream else "false"
        if exchange.finished is not None:
            self._child(self.duration, endpoint, provider, stream).observe(exchange.finished - exchange.started)
        if exchange.ttfb is not None:
            self._child(self.ttfb, endpoint, provider, stream).observe(exchange.ttfb)
        if exchange.input_tokens:
            add(self.tokens, (provider, model, "input"), exchange.input_tokens)
        if exchange.output_tokens:
            add(self.tokens, (provider, model, "output"), exchange.output_tokens)
        for spilled, window in exchange.spills:
            add(self.spills, (route, spilled, window))
        last = len(attempts) - 1
        for index, attempt in enumerate(attempts):
            result = str(attempt.status) if attempt.status is not None else attempt.outcome
            add(self.attempts, (attempt.provider, result))
            if index < last:
                reason = "cooldown" if attempt.outcome == "skipped" else result  # "spill" for spill_at
                tried = self._model(attempt.provider, attempt.model)
                add(self.fallbacks, (route, attempt.provider, tried, reason))

    def quota_observed(self, quota: Quota) -> None:
        """A gateway.upstream.quota listener: an answer said where a credential's plan stands."""
        self._quotas[(quota.provider, quota.credential)] = quota

    def _set_quota(self, quota: Quota) -> None:
        seen = self._credentials.setdefault(quota.provider, set())
        if quota.credential not in seen:
            if len(seen) >= MAX_CREDENTIALS:
                return
            seen.add(quota.credential)
        for window, state in quota.parse().windows.items():
            for family, value in ((self.quota_utilization, state.utilization), (self.quota_reset, state.reset)):
                if value is not None:
                    child = self._child(family, quota.provider, quota.credential, window)
                    # Stamped with the answer's time, not the flush's (Gauge.set's): with several
                    # workers, "mostrecent" must pick the latest answer, and a worker may flush an
                    # older answer up to a second after another worker flushed a newer one.
                    child._value.set(float(value), timestamp=quota.updated)

    def refused(self, reason: str) -> None:
        """A request refused for its client key: ``missing`` or ``invalid``."""
        self._add(self.refusals, (reason,))

    def provider_event(self, kind: str, provider: str) -> None:
        """A gateway.upstream.provider_health listener: cooldown, cooldown_end, circuit_open, circuit_close."""
        self._add(self.health_events, (provider, kind))

    def reloaded(self, ok: bool, generation: int | None = None) -> None:
        """A config reload was applied (``ok``) or rejected; ``generation`` is the one now served."""
        self._child(self.reloads, "ok" if ok else "failed").inc()
        if generation is not None:
            self.generation.set(generation)

    def set_generation(self, generation: int) -> None:
        self.generation.set(generation)

    # --- reading -----------------------------------------------------------------------------

    def collect(self) -> Iterable[Metric]:
        """Every family (this worker's counts flushed first), summed over all workers."""
        self.flush()
        return self.registry.collect()

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format and its content type."""
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

        self.flush()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_instance: Metrics | None = None


def instance() -> Metrics:
    """This process's Metrics (created on first use: prometheus families are per process)."""
    global _instance
    if _instance is None:
        _instance = Metrics()
    return _instance


def reloaded(ok: bool, generation: int | None = None) -> None:
    """For the config watcher: count a reload, applied (``ok``) or rejected."""
    instance().reloaded(ok, generation)


def provider_event(kind: str, provider: str) -> None:
    """For ``ProviderHealth.listeners``: count cooldowns and circuits starting and ending."""
    instance().provider_event(kind, provider)

