"""``gateway explain MODEL [--config F] [--request FILE] [--request-class C] [--agent-type T] [--server-tools]``.

Where a model name goes, and with which key. When routes read Claude Code's hint headers
(``when``), without the flags it lists every route the name can reach and which one a request
without hint headers gets; with them, the route such a request takes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.cli.environment import environment
from gateway.cli.validate import STDIO
from gateway.errors import ConfigFailure, UserError
from gateway.settings import FoundConfig, load_config
from rules.conditions import RequestFacts
from rules.errors import ConfigError
from rules.model import Provider, Route, Target
from rules.presets import PRESETS

__all__ = ["cmd_explain", "found_config"]


def found_config(config: str | None, env: Mapping[str, str]) -> FoundConfig:
    """The config serve would use (same discovery), or ConfigFailure naming the file."""
    try:
        return load_config(config, env, Path.cwd())
    except ConfigError as exc:
        raise ConfigFailure(exc, str(exc.problems[0].file or "the config")) from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple, frozenset)):
        items = sorted(value) if isinstance(value, frozenset) else value
        return "[" + ", ".join(_toml_value(v) for v in items) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _from(provider: Provider, key: str) -> str:
    """Where the value of ``key`` came from, as a TOML comment: ``  # from preset zai``."""
    origin = provider.origin(key)
    if origin == "file":
        return "  # from the file"
    if origin == "default":
        # A timeout that differs from the built-in one and is not in the provider's table.
        return "  # from [defaults]" if key in ("timeout_s", "connect_timeout_s") else "  # default"
    return f"  # from {origin}"


def _wire_policy(provider: Provider) -> list[str]:
    """The provider's settings that differ from the built-in defaults, as ``key = value  # origin``."""
    from rules.model import Provider as ProviderClass
    from rules.redact import redact

    skip = {"name", "base_url", "key", "preset"}  # preset: the target's heading line
    lines: list[str] = []
    for field in dataclasses.fields(ProviderClass):
        if field.name in skip:
            continue
        value = getattr(provider, field.name)
        default = field.default
        if default is dataclasses.MISSING or value == default:
            continue
        if field.name == "betas":
            shown = _toml_value(value.mode if value.mode != "allow" else value.allowed)
        elif field.name == "count_tokens":
            shown = f'{{ via = "{value.via}" }}' if value.mode == "via" else _toml_value(value.mode)
        elif field.name == "headers":
            # Extra headers may carry tokens of their own: names only, values redacted.
            shown = "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(redact(v))}" for k, v in value) + " }"
        else:
            shown = _toml_value(value)
        lines.append(f"{field.name} = {shown}{_from(provider, field.name)}")
    return lines


def _key_lines(provider: Provider, env: Mapping[str, str]) -> list[str]:
    """One line per key source: what it is (never the secret) and whether it yields a credential now."""
    from gateway.upstream.credentials import CredentialResolver, oauth_path

    lines: list[str] = []
    states = CredentialResolver(env).availability(provider)
    if not provider.key:  # a keyless preset (ollama, vllm)
        return [f"none: no credential is sent, nor the client's own{_from(provider, 'key')}"]
    for number, (source, state) in enumerate(zip(provider.key, states), start=1):
        what = str(state["source"])
        if source.kind == "oauth_file":
            what += f" -> {oauth_path(source, env)}"
        available = state.get("available")
        if available is True:
            status = "available now"
        elif available is False:
            status = f"NOT available: {state.get('detail', '')}"
        else:
            status = str(state.get("detail", "from each request"))
        prefix = f"{number}. " if len(provider.key) > 1 else ""
        lines.append(f"{prefix}{what}: {status}{_from(provider, 'key') if number == 1 else ''}")
    return lines


def _matched_by(route: Route, model: str) -> str:
    from rules.matching import Matcher

    index = Matcher([(p,) for p in route.match]).resolve(model)
    return route.match[index] if index >= 0 else "?"


def _facts(args: argparse.Namespace) -> RequestFacts | None:
    """The request facts the flags describe, or None when no flag was given."""
    request_class = getattr(args, "request_class", None)
    agent_type = getattr(args, "agent_type", None)
    server_tools = bool(getattr(args, "server_tools", False))
    if request_class is None and agent_type is None and not server_tools:
        return None
    return RequestFacts(request_class or "unknown", (agent_type or "").strip() or None, server_tools)


def _describe_facts(facts: RequestFacts) -> str:
    return (
        f"request_class {facts.request_class}, agent_type {facts.agent_type or 'none'}, "
        f"server_tools {'true' if facts.server_tools else 'false'}"
    )


def _candidate_lines(candidates: tuple[Route, ...], route: Route | None) -> list[str]:
    """Every route the model can reach, in order, with its conditions; which one no hint headers get."""
    lines = ["routes: by what Claude Code says about the request (its x-claude-code-* hint headers), the first that holds:"]
    for number, candidate in enumerate(candidates, start=1):
        when = f" when {candidate.when.describe()}" if candidate.when is not None else ", always"
        lines.append(f"  {number}. {candidate.name} (route[{candidate.index}]){when}")
    got = f"gets {route.name}" if route is not None else "matches none of them: 404 not_found_error"
    lines.append(f"  a request without hint headers (request_class unknown) {got}; "
                 "pick one with --request-class C [--agent-type T] [--server-tools]")
    return lines


def _spill_line(target: Target, last: bool) -> list[str]:
    if not target.spill_at:
        return []
    windows = ", or its ".join(f"{window} window is at {threshold:.0%} or more" for window, threshold in target.spill_at)
    then = ("the route's last target: it serves anyway" if last
            else "the next target serves until the window resets")
    return [f"  spill_at:       steps aside while its credential's {windows} ({then})"]


def cmd_explain(args: argparse.Namespace) -> int:
    env = environment()
    found = found_config(args.config, env)
    ruleset, origin = found.ruleset, found.origin
    model: str = args.model
    facts = _facts(args)
    candidates = ruleset.candidates(model)
    route = ruleset.resolve(model, facts)
    if not candidates:
        raise UserError(
            f"no route matches model {model!r} in {origin}; routes: "
            f"{', '.join(ruleset.route_names) or 'none'} (add a pattern for it, "
            'or a last route with match = "*")'
        )
    out: list[str] = [f"model:  {model}", f"config: {origin}"]
    if facts is not None:
        out.append(f"facts:  {_describe_facts(facts)}")
        if route is None:
            conditions = "; ".join(f"{r.name}: {r.when.describe()}" for r in candidates if r.when is not None)
            raise UserError(
                f"model {model!r} matches routes {', '.join(r.name for r in candidates)} in {origin}, but none "
                f"holds for {_describe_facts(facts)} ({conditions}); such a request gets 404"
            )
    elif len(candidates) > 1 or candidates[0].when is not None:
        out += _candidate_lines(candidates, route)
    if route is None:
        print("\n".join(out))
        return 0
    when = f", when {route.when.describe()}" if route.when is not None else ""
    out.append(f"route:  {route.name} (route[{route.index}]), matched by {_matched_by(route, model)!r}{when}")
    for number, target in enumerate(route.to, start=1):
        provider = target.provider
        if number == 1:
            heading = f"target {number}: provider {provider.name}"
        else:
            statuses = ", ".join(str(s) for s in sorted(route.fallback_on))
            heading = (
                f"target {number} (fallback, after {statuses}, a connect error or a timeout): "
                f"provider {provider.name}"
            )
        upstream = target.upstream_model(model)
        rewritten = " (rewritten)" if upstream != model else " (unchanged)"
        keys = _key_lines(provider, env)
        policy = _wire_policy(provider)
        out += ["", heading]
        if provider.preset is not None:
            out.append(f"  preset:         {provider.preset} ({PRESETS[provider.preset].title})")
        out += [
            f"  upstream URL:   {provider.base_url}/v1/messages{_from(provider, 'base_url')}",
            f"  upstream model: {upstream}{rewritten}",
            f"  key:            {keys[0] if keys else 'none'}",
            *(f"                  {line}" for line in keys[1:]),
            f"  wire policy:    {policy[0] if policy else 'defaults (request forwarded as sent)'}",
            *(f"                  {line}" for line in policy[1:]),
            *_spill_line(target, number == len(route.to)),
        ]
    if args.request is not None:
        out += _request_preview(args.request, route, model, env)
    print("\n".join(out))
    return 0


def _request_preview(name: str, route: Route, model: str, env: Mapping[str, str]) -> list[str]:
    """``--request FILE``: the request in FILE as it would leave for each target (gateway.cli.preview)."""
    from gateway.cli.preview import load_request, preview_lines

    try:
        data = sys.stdin.buffer.read() if name == STDIO else Path(name).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the request file {name}: {exc.strerror}") from None
    try:
        request = load_request(data, model)
    except ValueError as exc:
        raise UserError(f"{'<stdin>' if name == STDIO else name}: {exc}") from None
    return preview_lines(route, request, env)
