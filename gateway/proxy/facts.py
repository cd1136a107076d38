"""The route for a request when the rules read more than its model: Claude Code's hint headers.

Called only when ``RuleSet.conditional`` (some route has ``when``); a model-only config keeps
its one dict lookup in ``gateway.server.endpoints``. The facts are built once per request from
``x-claude-code-request-class`` and ``x-claude-code-agent-type``; the body's ``tools`` are read
only when some route asks about ``server_tools`` *and* the answer would change the route, so a
request the rules send to the same place either way is never parsed for it.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.errors import InvalidRequest
from gateway.proxy.exchange import Exchange
from gateway.wire.body import RequestBody
from rules.conditions import REQUEST_CLASS_HEADER, RequestFacts, server_tools_in
from rules.model import Route, RuleSet

__all__ = ["HINT_HEADERS_VARIABLE", "conditional_route"]

# What Claude Code needs in its environment to send the hint headers at all.
HINT_HEADERS_VARIABLE = "CLAUDE_CODE_GATEWAY_HINT_HEADERS"


def conditional_route(
    ruleset: RuleSet, facts: RequestFacts, headers: Mapping[str, str], body: RequestBody, exchange: Exchange
) -> Route | None:
    """The route for this request's model and facts (read from its headers by the caller).

    None when no route matches the model at all (the caller's error); ``InvalidRequest`` naming
    the facts when routes match the model but none of their ``when`` holds (400, not 404:
    Claude Code replaces a 404's text with its own "the selected model may not exist").
    """
    route = ruleset.resolve(body.model, facts)
    if ruleset.uses_server_tools:
        with_tools = RequestFacts(facts.request_class, facts.agent_type, True)
        other = ruleset.resolve(body.model, with_tools)
        # Parse the body (20-50 KB from Claude Code, ~50 us) only when its tools decide the route.
        if other is not route and server_tools_in(body.doc.get("tools")):
            route, facts = other, with_tools
    if route is None:
        candidates = ruleset.candidates(body.model)
        if candidates:
            raise InvalidRequest(_no_condition_holds(body.model, candidates, facts, REQUEST_CLASS_HEADER in headers))
    return route


def _no_condition_holds(model: str, candidates: tuple[Route, ...], facts: RequestFacts, sent_class: bool) -> str:
    routes = ", ".join(f"{r.name} (when {r.when.describe()})" if r.when else r.name for r in candidates)
    said = (
        f"request_class {facts.request_class}"
        + ("" if sent_class else f" (no {REQUEST_CLASS_HEADER} header)")
        + f", agent_type {facts.agent_type or 'none'}, server_tools {'true' if facts.server_tools else 'false'}"
    )
    message = (
        f"model '{model}' matches routes {routes}, but none of their `when` holds for this request "
        f"({said}); add a route without `when` after them (e.g. match = \"*\") or widen a `when`"
    )
    if not sent_class:
        message += f"; Claude Code sends the hint headers only with {HINT_HEADERS_VARIABLE}=1 in its environment"
    return message
