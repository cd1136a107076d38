"""create_app(): the Sanic application of one worker.

Each worker builds its own app from picklable ``WorkerSettings`` (Sanic starts workers as new
processes), loads the config itself, and opens one pooled HTTP client when its loop starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import (
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    SanicException,
    ServiceUnavailable,
)
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

from gateway import __version__, errors
from gateway.errors import SHOULD_RETRY, ClientError, error_body
from gateway.ops import metrics
from gateway.ops.health import health_report
from gateway.ops.ledger.store import ledger_path
from gateway.ops.ledger.worker import WorkerLedger
from gateway.ops.logs import setup_logging
from gateway.ops.requestlog import AfterResponse, RequestLog, log_refusal
from gateway.proxy.relay import ROUTE_HEADER, add_provenance
from gateway.reload.live import LiveConfig, LoadedConfig
from gateway.reload.watcher import ConfigWatch
from gateway.server import dashboard, endpoints
from gateway.server.access import AccessControl
from gateway.server.edge import Edge, edge_middleware, head_refusal
from gateway.server.request import GatewayRequest
from gateway.server.runtime import Runtime
from gateway.settings import WorkerSettings, is_loopback, response_timeout
from gateway.upstream.client import Upstream
from gateway.upstream.transport import Transport
from rules.discover import load_discovered
from rules.model import RuleSet

__all__ = ["AnthropicErrors", "create_app", "describe_routes"]

log = logging.getLogger("gateway")

# Enough connections that hundreds of concurrent streams never queue for one.
_MAX_CONNECTIONS = 2000
_KEEPALIVE_EXPIRY_S = 60.0


class AnthropicErrors(ErrorHandler):
    """Every error as Anthropic-shaped JSON; a stack trace goes to the log, never to the client."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        status, error_type, message, retryable = _describe(request, exception)
        headers = dict(exception.headers) if isinstance(exception, ClientError) else {}
        if not retryable:
            headers[SHOULD_RETRY] = "false"
        exchange = getattr(getattr(request, "ctx", None), "exchange", None)
        if exchange is not None:
            if not exchange.status:
                exchange.status, exchange.error = status, message
            if exchange.attempts:  # it came from a provider: name it, as every answer does
                add_provenance(headers, exchange.route, exchange.attempts[-1])
            elif exchange.route is not None:
                headers[ROUTE_HEADER] = exchange.route
        return HTTPResponse(error_body(error_type, message), status=status, headers=headers,
                            content_type="application/json")


def _describe(request: Request, exc: Exception) -> tuple[int, str, str, bool]:
    """Status, error type, message and whether a retry may help; Sanic's own exceptions take the
    gateway tree's status, type and retryability."""
    if isinstance(exc, ClientError):
        return exc.status, exc.error_type, exc.message, exc.retryable
    if isinstance(exc, asyncio.CancelledError):
        # The client left (Esc in Claude Code) before an answer: routine, nobody to answer.
        return 499, errors.ClientError.error_type, "the client closed the connection", True
    if isinstance(exc, NotFound):
        misplaced = _misplaced_messages_call(request)
        if misplaced is not None:
            return errors.InvalidRequest.status, errors.InvalidRequest.error_type, misplaced, False
        return errors.NotFound.status, errors.NotFound.error_type, (
            f"no such endpoint: {request.method} {request.path} (the gateway serves POST /v1/messages, "
            "POST /v1/messages/count_tokens, GET /v1/models, GET /health, GET /metrics, GET /stats, "
            "GET /sessions/{session id}, and the dashboard at GET /)"
        ), errors.NotFound.retryable
    if isinstance(exc, MethodNotAllowed):
        return errors.MethodNotAllowed.status, errors.MethodNotAllowed.error_type, (
            f"method {request.method} is not allowed on {request.path}"
        ), errors.MethodNotAllowed.retryable
    refused_head = head_refusal(request, exc)  # 400, 414, 431 for a head Sanic's parser refused
    if refused_head is not None:
        return (*refused_head, False)  # the same head fails the same way again
    if isinstance(exc, PayloadTooLarge):
        limit = request.app.config.REQUEST_MAX_SIZE / (1024 * 1024)
        return errors.RequestTooLarge.status, errors.RequestTooLarge.error_type, (
            f"request body is larger than the gateway's limit of {limit:g} MiB "
            "(server.max_body_mb in routes.toml)"
        ), errors.RequestTooLarge.retryable
    if isinstance(exc, ServiceUnavailable):
        return errors.UpstreamTimeout.status, errors.UpstreamTimeout.error_type, (
            "the gateway gave up waiting for the upstream answer"
        ), errors.UpstreamTimeout.retryable
    if isinstance(exc, RequestTimeout):
        return 408, errors.InvalidRequest.error_type, "the request was not received in time", True
    if isinstance(exc, SanicException) and exc.status_code < 500:
        # BadRequest and the rest of the client errors Sanic raises while reading a request.
        return exc.status_code, errors.InvalidRequest.error_type, str(exc) or "bad request", False
    exchange = getattr(getattr(request, "ctx", None), "exchange", None)
    ref = f" (request {exchange.request_id})" if exchange is not None else ""
    log.error("internal error on %s %s%s", request.method, request.path, ref, exc_info=exc)
    return 500, "api_error", f"internal gateway error{ref}; the gateway log has the details", True


_MESSAGES_PATHS = ("/v1/messages", "/v1/messages/count_tokens")


def _misplaced_messages_call(request: Request) -> str | None:
    """The fix for a Messages call under an extra prefix (``ANTHROPIC_BASE_URL=.../v1`` gives
    ``/v1/v1/messages``), or None.

    Answered as a 400, not a 404: Claude Code replaces the text of any 404 with "There's an
    issue with the selected model ... It may not exist", which hides the fix.
    """
    path = request.path
    for suffix in _MESSAGES_PATHS:
        if path.endswith(suffix) and path != suffix:
            prefix = path[: -len(suffix)]
            base = f"{request.scheme}://{request.host}"
            return (
                f"the gateway serves {suffix} at its root, but this request came to {path}: set "
                f"ANTHROPIC_BASE_URL to {base} (without {prefix}; Claude Code adds /v1 itself)"
            )
    return None


# The gateway's own endpoints: here a client key may also come as Authorization: Bearer.
_OWN_ENDPOINTS = frozenset({"/metrics", "/stats"})


def _gate(request: Request) -> HTTPResponse | None:
    """The one request middleware: the edge's checks (``gateway.server.edge``), then client keys.

    One middleware, not two: each costs Sanic a dispatch per request (~1 us), and the order
    matters anyway (a request for a foreign Host is refused before its key is looked at).
    """
    refused = edge_middleware(request)
    return refused if refused is not None else _client_keys(request)


def _client_keys(request: Request) -> HTTPResponse | None:
    """401 without a valid x-gateway-key (when client keys are set).

    /health is always served, but on a LAN bind without the providers, routes and tiers for a
    caller without a valid key.
    """
    if not request.head:
        return None  # Sanic's own refusal of a head it could not parse (400, 414, 431) stands
    ctx = request.app.ctx
    gate: AccessControl = ctx.access
    headers = request.headers
    if request.path in dashboard.PATHS:  # loopback, or a key also as HTTP Basic (gateway.server.dashboard)
        return dashboard.refusal(request)
    if request.path == "/health":
        if gate.shows_details(headers):
            return None
        runtime = ctx.runtime
        return json(health_report(runtime.live, runtime.credentials, runtime.health, details=False))
    path = request.path
    if gate.allows(headers, bearer=path in _OWN_ENDPOINTS or path.startswith("/sessions/")):
        return None
    reason = gate.refusal_reason(headers)
    metrics.instance().refused(reason)
    log_refusal(request.client_ip, request.method, request.path, reason, fmt=gate.log_format)
    body = error_body("authentication_error", gate.refusal(headers))
    # A missing or wrong gateway key stays wrong on a retry: Claude Code shows it at once.
    return HTTPResponse(body, status=401, headers={SHOULD_RETRY: "false"}, content_type="application/json")


def create_app(settings: WorkerSettings, ruleset: RuleSet | None = None, *, name: str = "gateway") -> Sanic[Any, Any]:
    """The Sanic app of one worker; ``ruleset``: the config the caller already loaded, if any.

    ``name``: the app's name in Sanic's registry of apps in this process, where each name may
    be used once. ``serve`` builds one app per process; a test that serves several apps in one
    process (tests/fakes/inprocess.py) gives each a name of its own.
    """
    setup_logging(settings.log_level, settings.log_format, settings.log_file)
    if ruleset is None:
        ruleset = load_discovered(settings.discovery, os.environ)
    app = Sanic(name, error_handler=AnthropicErrors(), configure_logging=False, request_class=GatewayRequest)
    app.config.ACCESS_LOG = False
    app.config.MOTD = False
    app.config.NOISY_EXCEPTIONS = False
    app.config.REQUEST_MAX_SIZE = ruleset.server.max_body_bytes
    app.config.RESPONSE_TIMEOUT = int(response_timeout(ruleset))
    app.config.KEEP_ALIVE_TIMEOUT = 75  # longer than clients' idle pools, so they reuse connections
    app.ctx.settings = settings
    app.ctx.initial = ruleset

    app.add_route(endpoints.messages, "/v1/messages", methods=["POST"])
    app.add_route(endpoints.count_tokens, "/v1/messages/count_tokens", methods=["POST"])
    app.add_route(endpoints.models, "/v1/models", methods=["GET"])
    app.add_route(endpoints.model, "/v1/models/<model_id:path>", methods=["GET"])
    app.add_route(endpoints.health, "/health", methods=["GET"])
    app.add_route(endpoints.metrics, "/metrics", methods=["GET"])
    app.add_route(endpoints.stats, "/stats", methods=["GET"])
    app.add_route(endpoints.session, "/sessions/<digest:str>", methods=["GET"])
    for path in dashboard.ASSETS:
        app.add_route(dashboard.page, path, methods=["GET"], name=f"dashboard{path.replace('/', '_').replace('.', '_')}")
    app.add_route(dashboard.data, "/dashboard.json", methods=["GET"])
    # The edge checks, then client keys (every path but /health) and the trimmed /health of a LAN bind.
    app.register_middleware(_gate, "request")

    @app.before_server_start
    async def _start(app: Sanic[Any, Any]) -> None:
        transport = Transport(
            max_connections=_MAX_CONNECTIONS, keepalive_expiry_s=_KEEPALIVE_EXPIRY_S
        )
        runtime = Runtime(LiveConfig(app.ctx.initial, settings.discovery.reason), Upstream(transport))
        app.ctx.runtime = runtime
        app.ctx.edge = Edge(runtime.live, settings.host)
        app.ctx.access = AccessControl(
            runtime.live, os.environ, loopback=is_loopback(settings.host), log_format=settings.log_format
        )
        counters = metrics.instance()
        counters.set_generation(runtime.live.current.generation)
        counters.start()
        runtime.health.listeners.append(counters.provider_event)
        runtime.quota.listeners.append(counters.quota_observed)
        # The usage ledger: its file is the one the rules named at start (a restart moves it).
        ledger = WorkerLedger(
            ledger_path(app.ctx.initial, os.environ), lambda: runtime.live.current.ruleset.server.ledger_days
        )
        ledger.start()
        app.ctx.ledger = ledger
        runtime.exchange_listeners.append(
            AfterResponse(
                [RequestLog(settings.log_format), counters.observe, runtime.sessions.observe, ledger.listener]
            )
        )

        def on_swap(loaded: LoadedConfig) -> None:
            # Sanic copies it into each new connection; keep it in step with the new timeouts.
            app.config.RESPONSE_TIMEOUT = response_timeout(loaded.ruleset)
            counters.reloaded(True, loaded.generation)
            runtime.health.config_reloaded()  # a new key may serve where the old was refused

        watch = ConfigWatch(
            settings.discovery, runtime.live, runtime.credentials, os.environ,
            listening=f"{settings.host}:{settings.port}", on_swap=on_swap,
            on_fail=lambda: counters.reloaded(False),
        )
        if settings.watch:
            app.ctx.config_watch = watch
            app.add_task(watch.run(), name="config-watcher")
        # `kill -HUP`, systemd's ExecReload: reload, with or without --no-watch. Signals reach the
        # main thread only: an app served from another thread (tests in process) has none to take.
        if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, watch.reload_now)

    @app.after_server_start
    async def _listening(app: Sanic[Any, Any]) -> None:
        # Said once this worker serves, never before: a person (or `gateway start`) reads it as "ready".
        shown = f"[{settings.host}]" if ":" in settings.host else settings.host
        log.info("gateway %s listening on http://%s:%d (pid %d)", __version__, shown, settings.port, os.getpid())

    @app.before_server_stop
    async def _stop_watching(app: Sanic[Any, Any]) -> None:
        # The watcher must be over before Sanic's own task shutdown, which never runs the loop again.
        watch: ConfigWatch | None = getattr(app.ctx, "config_watch", None)
        if watch is not None:
            await watch.stop()

    @app.after_server_stop
    async def _stop(app: Sanic[Any, Any]) -> None:
        metrics.instance().stop()
        ledger: WorkerLedger | None = getattr(app.ctx, "ledger", None)
        if ledger is not None:
            await asyncio.to_thread(ledger.stop)  # the last batch is written before the process ends
        runtime = getattr(app.ctx, "runtime", None)
        if runtime is not None:
            await runtime.close()

    return app


def describe_routes(ruleset: RuleSet) -> list[str]:
    """``haiku [claude-haiku-*, glm-4.7] -> zai (glm-4.7), anthropic`` lines for the startup log."""
    lines = []
    for route in ruleset.routes:
        targets = ", ".join(
            t.provider.name + (f" ({t.model})" if t.model is not None else "") for t in route.to
        )
        lines.append(f"{route.name} [{', '.join(route.match)}] -> {targets}")
    return lines
