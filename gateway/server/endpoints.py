"""The HTTP endpoints: /v1/messages, /v1/messages/count_tokens, /v1/models, /health, /metrics, /stats.

Each request takes the worker's current rules once, at entry (``live.current``), and keeps
them to the end, whatever reloads happen meanwhile.
"""

from __future__ import annotations

import asyncio
import hmac
import os

from sanic import Request
from sanic.response import HTTPResponse, json

from gateway.errors import ClientError, NotFound
from gateway.ops import metrics as counters
from gateway.ops.health import health_report
from gateway.ops.stats import usage
from gateway.proxy.exchange import Exchange
from gateway.server.catalog import get_model, list_models
from gateway.server.runtime import Runtime
from gateway.wire.body import parse_body
from rules.conditions import RequestFacts

__all__ = ["SESSION_HEADER", "count_tokens", "health", "messages", "metrics", "model", "models", "stats"]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.ctx.runtime
    return runtime


SESSION_HEADER = "x-claude-code-session-id"


def _session(request: Request) -> str | None:
    """A short keyed digest of Claude Code's session id: sessions group, the id is never kept.

    The key (``app.ctx.session_key``) is the ledger's, so every worker and every restart give
    a session the same digest; without a ledger it is random per process.
    """
    raw = request.headers.get(SESSION_HEADER)
    if not raw:
        return None
    return hmac.new(request.app.ctx.session_key, raw.encode("utf-8", "surrogateescape"), "sha256").hexdigest()[:16]


def _path(request: Request) -> str:
    # The query string is kept: Claude Code calls /v1/messages?beta=true.
    query = request.query_string
    return f"{request.path}?{query}" if query else request.path


async def _forward(request: Request, endpoint: str) -> HTTPResponse | None:
    runtime = _runtime(request)
    exchange = Exchange(os.urandom(8).hex(), endpoint, client=request.ip)
    request.ctx.exchange = exchange
    facts = RequestFacts.from_headers(request.headers)
    exchange.request_class, exchange.agent_type = facts.request_class, facts.agent_type
    exchange.session = _session(request)
    try:
        ruleset = runtime.live.current.ruleset  # once: this request's rules, to the end
        request.ctx.ruleset = ruleset
        body = parse_body(request.body)
        exchange.model = body.model
        exchange.stream = body.stream
        route = ruleset.resolve(body.model)
        if route is None:
            raise NotFound(
                f"model '{body.model}' matches no route (routes: {', '.join(ruleset.route_names)}); "
                "add a [[route]] whose match covers it, or a catch-all match = \"*\""
            )
        exchange.route = route.name
        if endpoint == "count_tokens":
            return await runtime.count_tokens.answer(request, route, body, exchange, _path(request))
        return await runtime.proxy.forward(request, route, body, exchange, _path(request))
    except ClientError as exc:
        exchange.status, exchange.error = exc.status, exc.message
        raise
    except asyncio.CancelledError:
        exchange.status, exchange.error = 499, "the client went away"
        raise
    except Exception as exc:
        exchange.status, exchange.error = 500, f"{exc.__class__.__name__}: {exc}"
        raise
    finally:
        runtime.finished(exchange)


async def messages(request: Request) -> HTTPResponse | None:
    """POST /v1/messages: route by model, forward, stream back."""
    return await _forward(request, "messages")


async def count_tokens(request: Request) -> HTTPResponse | None:
    """POST /v1/messages/count_tokens: per the target provider's count_tokens policy."""
    return await _forward(request, "count_tokens")


async def models(request: Request) -> HTTPResponse:
    """GET /v1/models: the model names the routes take."""
    current = _runtime(request).live.current
    return json(list_models(current.ruleset, current.loaded_at, dict(request.args)))


async def model(request: Request, model_id: str) -> HTTPResponse:
    """GET /v1/models/{id}."""
    current = _runtime(request).live.current
    return json(get_model(current.ruleset, current.loaded_at, model_id))


async def health(request: Request) -> HTTPResponse:
    """GET /health: config source and generation, providers, routes, tiers, last reload error."""
    runtime = _runtime(request)
    return json(
        health_report(runtime.live, runtime.credentials, runtime.health, os.environ, limits=runtime.limits)
    )


async def metrics(request: Request) -> HTTPResponse:
    """GET /metrics: the Prometheus text format, summed over every worker."""
    instance = counters.instance()
    runtime = getattr(request.app.ctx, "runtime", None)
    if runtime is not None:
        instance.set_generation(runtime.live.current.generation)
    body, content_type = instance.exposition()
    return HTTPResponse(body, content_type=content_type)


async def stats(request: Request) -> HTTPResponse:
    """GET /stats: the usage document, over every worker."""
    return json(usage(counters.instance().collect()))
