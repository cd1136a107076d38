"""The HTTP endpoints: /v1/messages, /v1/messages/count_tokens, /v1/models, /health, /metrics, /stats,
/sessions/{digest}.

Each request takes the worker's current rules once, at entry (``live.current``), and keeps
them to the end, whatever reloads happen meanwhile.
"""

from __future__ import annotations

import asyncio
import os

from sanic import Request
from sanic.response import HTTPResponse, json

from gateway.errors import ClientError, InvalidRequest, NotFound
from gateway.ops import metrics as counters
from gateway.ops.health import health_report
from gateway.ops.sessions import SESSION_HEADER, session_digest
from gateway.ops.stats import usage
from gateway.proxy.exchange import Exchange
from gateway.proxy.facts import conditional_route
from gateway.server.catalog import get_model, list_models
from gateway.server.runtime import Runtime
from gateway.wire.body import parse_body
from rules.conditions import REQUEST_CLASS_HEADER, RequestFacts

__all__ = ["count_tokens", "health", "messages", "metrics", "model", "models", "session", "stats"]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.ctx.runtime
    return runtime




_NO_HINTS = RequestFacts()


def _path(request: Request) -> str:
    # The query string is kept: Claude Code calls /v1/messages?beta=true.
    query = request.query_string
    return f"{request.path}?{query}" if query else request.path


async def _forward(request: Request, endpoint: str) -> HTTPResponse | None:
    runtime = _runtime(request)
    headers = request.headers
    session = headers.get(SESSION_HEADER)
    exchange = Exchange(
        os.urandom(8).hex(), endpoint, client=request.ip, session=session_digest(session) if session else None
    )
    request.ctx.exchange = exchange
    try:
        ruleset = runtime.live.current.ruleset  # once: this request's rules, to the end
        request.ctx.ruleset = ruleset
        # Claude Code's hint headers, read when a route asks or Claude Code sent them: for the
        # rules, the log and the ledger (a model-only config without them pays one lookup).
        facts = _NO_HINTS
        if ruleset.conditional or REQUEST_CLASS_HEADER in headers:
            facts = RequestFacts.from_headers(headers)
            if ruleset.conditional or facts.request_class != "unknown":
                exchange.request_class, exchange.agent_type = facts.request_class, facts.agent_type
        body = parse_body(request.body)
        exchange.model = body.model
        exchange.stream = body.stream
        if ruleset.conditional:  # routes read Claude Code's hint headers (and maybe the body's tools)
            route = conditional_route(ruleset, facts, headers, body, exchange)
        else:
            route = ruleset.resolve(body.model)
        if route is None:
            # 400, not 404: Claude Code shows a 404 as "There's an issue with the selected
            # model ... It may not exist" and drops this text, which says the fix.
            raise InvalidRequest(
                f"model '{body.model}' matches no route (routes: {', '.join(ruleset.route_names)}); "
                "add a [[route]] whose match covers it to routes.toml, or a catch-all match = \"*\""
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
        health_report(
            runtime.live, runtime.credentials, runtime.health, os.environ, limits=runtime.limits, quota=runtime.quota
        )
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


async def session(request: Request, digest: str) -> HTTPResponse:
    """GET /sessions/{digest}: the last request of one Claude Code session (``gateway statusline``)."""
    served = _runtime(request).sessions.get(digest)
    if served is None:
        raise NotFound(
            f"no request of session {digest} reached this gateway since it started"
            " (with --workers N, each worker remembers the sessions it served)"
        )
    return json(served.document(digest))
