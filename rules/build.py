"""A checked routes.toml document -> the immutable RuleSet, every default filled in.

Only called on a document that passed the schema and the semantic checks, so it trusts the
shapes (a target's provider exists, a key source has exactly one key, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from rules.conditions import Conditions
from rules.model import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_FALLBACK_ON,
    DEFAULT_LEDGER_DAYS,
    DEFAULT_MAX_BODY_MB,
    DEFAULT_TIMEOUT_S,
    QUOTA_WINDOWS,
    BetaPolicy,
    ConfigSource,
    CountTokensPolicy,
    Defaults,
    KeyKind,
    KeySource,
    Provider,
    Route,
    RuleSet,
    ServerConfig,
    Target,
)
from rules.presets import apply_preset
from rules.semantics import route_names

__all__ = ["build_provider", "build_ruleset", "key_source", "route_conditions"]

Doc = Mapping[str, Any]

# max_queue when only max_concurrent is given: a short burst waits, a flood gets 529 early.
QUEUE_PER_SLOT = 4


def build_ruleset(doc: Doc, source: ConfigSource) -> RuleSet:
    """The RuleSet a valid document describes (without warnings: the loader adds those)."""
    defaults = _defaults(doc.get("defaults", {}))
    providers = {name: build_provider(name, p, defaults) for name, p in doc["providers"].items()}
    names = route_names(doc)
    routes = tuple(
        _route(index, names[index], r, providers, defaults) for index, r in enumerate(doc["route"])
    )
    return RuleSet(
        providers=providers,
        routes=routes,
        server=_server(doc.get("server", {})),
        defaults=defaults,
        source=source,
    )


def key_source(table: Doc) -> KeySource:
    """``{ env = "NAME" }`` -> ``KeySource("env", "NAME")``; ``{ oauth_file = true }`` -> ref ""."""
    ((kind, ref),) = table.items()
    if kind == "oauth_file":
        return KeySource("oauth_file", "" if ref is True else ref)
    if kind == "client":
        return KeySource("client")
    return KeySource(cast(KeyKind, kind), ref)


def route_conditions(table: Doc | None) -> Conditions | None:
    """A route's ``when`` table as Conditions; None when the route has none.

    ``{ request_class = "subagent", agent_type = ["a*", "b"] }`` ->
    ``Conditions(frozenset({"subagent"}), ("a*", "b"))``.
    """
    if table is None:
        return None
    classes = table.get("request_class")
    agents = table.get("agent_type")
    return Conditions(
        request_class=None if classes is None else frozenset([classes] if isinstance(classes, str) else classes),
        agent_type=None if agents is None else ((agents,) if isinstance(agents, str) else tuple(agents)),
        server_tools=table.get("server_tools"),
    )


def _spill_at(table: Doc | None) -> tuple[tuple[str, float], ...]:
    # In QUOTA_WINDOWS order, whatever the file's: equal configs give equal Targets.
    if not table:
        return ()
    return tuple((window, float(table[window])) for window in QUOTA_WINDOWS if window in table)


def _defaults(table: Doc) -> Defaults:
    return Defaults(
        timeout_s=float(table.get("timeout_s", DEFAULT_TIMEOUT_S)),
        connect_timeout_s=float(table.get("connect_timeout_s", DEFAULT_CONNECT_TIMEOUT_S)),
        fallback_on=frozenset(table.get("fallback_on", DEFAULT_FALLBACK_ON)),
    )


def _server(table: Doc) -> ServerConfig:
    return ServerConfig(
        host=table.get("host"),
        port=table.get("port"),
        client_keys=tuple(key_source(k) for k in table.get("client_keys", ())),
        max_body_mb=float(table.get("max_body_mb", DEFAULT_MAX_BODY_MB)),
        ledger=table.get("ledger", True),
        ledger_days=table.get("ledger_days", DEFAULT_LEDGER_DAYS),
        allowed_hosts=tuple(_allowed_host(h) for h in table.get("allowed_hosts", ())),
    )


def _allowed_host(entry: str) -> str:
    """An ``allowed_hosts`` entry as the gateway compares it: lower case, IPv6 without brackets."""
    entry = entry.strip().lower().rstrip(".")
    return entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry


def build_provider(name: str, written: Doc, defaults: Defaults) -> Provider:
    """The Provider a checked ``[providers.NAME]`` table describes, its preset applied."""
    table = apply_preset(written)
    key = table.get("key", ())  # absent only beside a preset that needs none: send no credential
    chain: Sequence[Doc] = key if isinstance(key, (list, tuple)) else [key]
    betas = table.get("betas", "forward")
    count_tokens = table.get("count_tokens", "forward")
    max_concurrent = table.get("max_concurrent")
    max_queue = table.get("max_queue")
    if max_queue is None and max_concurrent is not None:
        max_queue = QUEUE_PER_SLOT * max_concurrent
    return Provider(
        name=name,
        base_url=table["base_url"].rstrip("/"),
        key=tuple(key_source(k) for k in chain),
        auth=table.get("auth"),
        betas=(
            BetaPolicy("allow", frozenset(betas)) if isinstance(betas, list) else BetaPolicy(betas)
        ),
        thinking=table.get("thinking", "foreign"),
        thinking_param=table.get("thinking_param", "keep"),
        count_tokens=(
            CountTokensPolicy("via", count_tokens["via"])
            if isinstance(count_tokens, Mapping)
            else CountTokensPolicy(count_tokens)
        ),
        system_turns=table.get("system_turns", "keep"),
        tool_choice=table.get("tool_choice", "keep"),
        drop_fields=tuple(table.get("drop_fields", ())),
        strip_cache_control=table.get("strip_cache_control", False),
        headers=tuple(table.get("headers", {}).items()),
        timeout_s=float(table.get("timeout_s", defaults.timeout_s)),
        connect_timeout_s=float(table.get("connect_timeout_s", defaults.connect_timeout_s)),
        max_concurrent=max_concurrent,
        max_queue=max_queue,
        preset=table.get("preset"),
        file_keys=frozenset(written),
    )


def _route(
    index: int, name: str, table: Doc, providers: Mapping[str, Provider], defaults: Defaults
) -> Route:
    match = table["match"]
    to = table["to"]
    targets = (
        (Target(providers[to]),)
        if isinstance(to, str)
        else tuple(
            Target(providers[t["provider"]], t.get("model"), _spill_at(t.get("spill_at"))) for t in to
        )
    )
    fallback_on = table.get("fallback_on")
    return Route(
        name=name,
        match=(match,) if isinstance(match, str) else tuple(match),
        to=targets,
        fallback_on=defaults.fallback_on if fallback_on is None else frozenset(fallback_on),
        index=index,
        when=route_conditions(table.get("when")),
    )
