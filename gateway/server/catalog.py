"""``GET /v1/models``: the model names a client can use through the gateway, Anthropic-shaped.

Claude Code's gateway model discovery calls ``GET /v1/models?limit=1000``. The list holds the
exact model names the routes match (globs cannot be listed) and the upstream models the
routes rewrite to when a route takes that name too, in route order, each once.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequest, NotFound
from gateway.timefmt import iso
from rules.model import RuleSet
from rules.patterns import is_glob

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "get_model", "list_models", "model_ids"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def _entry(ruleset: RuleSet, model: str, created_at: str) -> dict[str, Any] | None:
    # A name only routes with `when` reach (subagents, say) is listed too: Claude Code's
    # requests carry the hint headers that pick them. Shown with the route a request without
    # them gets, else the first that can take it.
    route = ruleset.resolve(model)
    if route is None:
        candidates = ruleset.candidates(model)
        if not candidates:
            return None
        route = candidates[0]
    first = route.to[0]
    upstream = first.upstream_model(model)
    via = first.provider.name if upstream == model else f"{first.provider.name}: {upstream}"
    return {"type": "model", "id": model, "display_name": f"{model} ({via})", "created_at": created_at}


def model_ids(ruleset: RuleSet) -> list[str]:
    """Every listable model name, in route order, each once (case-insensitively)."""
    seen: set[str] = set()
    ids: list[str] = []
    for route in ruleset.routes:
        names = [p for p in route.match if not is_glob(p)]
        names += [t.model for t in route.to if t.model is not None]
        for name in names:
            if name.lower() not in seen and ruleset.candidates(name):
                seen.add(name.lower())
                ids.append(name)
    return ids


def list_models(ruleset: RuleSet, loaded_at: float, args: dict[str, list[str]]) -> dict[str, Any]:
    """The ``/v1/models`` page for query ``args`` (limit, after_id, before_id)."""
    raw_limit = (args.get("limit") or [str(DEFAULT_LIMIT)])[0]
    try:
        limit = int(raw_limit)
    except ValueError:
        raise InvalidRequest(f"limit: expected an integer from 1 to {MAX_LIMIT}, got '{raw_limit}'") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit: expected an integer from 1 to {MAX_LIMIT}, got {limit}")
    ids = model_ids(ruleset)
    after = args["after_id"][0] if args.get("after_id") else None
    before = args["before_id"][0] if args.get("before_id") else None
    if after is not None:
        ids = ids[ids.index(after) + 1 :] if after in ids else []
    if before is not None:
        ids = ids[: ids.index(before)] if before in ids else []
    page, more = ids[:limit], len(ids) > limit
    if before is not None and len(ids) > limit:
        page, more = ids[-limit:], True
    created = _created_at(loaded_at)
    data = [e for e in (_entry(ruleset, m, created) for m in page) if e is not None]
    return {
        "data": data,
        "has_more": more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def get_model(ruleset: RuleSet, loaded_at: float, model: str) -> dict[str, Any]:
    """``GET /v1/models/{id}``: the model when a route may take it, else 404."""
    entry = _entry(ruleset, model, _created_at(loaded_at))
    if entry is None:
        raise NotFound(f"model '{model}' matches no route (routes: {', '.join(ruleset.route_names)})")
    return entry


def _created_at(loaded_at: float) -> str:
    # Models have no creation date here; the config's load time is the honest stand-in.
    return iso(loaded_at)
