"""Any RuleSet back to routes.toml text that loads to an equal RuleSet.

Used by ``gateway routes --from-env`` (the legacy environment as a file the user can keep and
edit), so the output is written for a reader: providers first, then routes in their order;
shorthand forms where they apply (``key = { env = "X" }`` for a one-source chain, ``to =
"zai"`` for one target without a model rewrite or spill_at, ``match = "*"`` and
``request_class = "subagent"`` for one value); values equal
to their defaults left out. Provider ``timeout_s`` / ``connect_timeout_s`` and route
``fallback_on`` are compared with the RuleSet's ``[defaults]``, which the loader applies to
every provider and route that does not set its own; ``max_queue`` is written only when it
differs from the one the loader derives from ``max_concurrent``, and a route name the loader
made up (``route[2]``) is not written. A provider with a preset is written as ``preset =
"zai"`` and only the keys whose values differ from what the preset gives.

The TOML emitter is the few lines below rather than a dependency: routes.toml needs only
strings, numbers, booleans, arrays and inline tables, and basic strings escaped per TOML 1.0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from functools import cache

from rules.build import QUEUE_PER_SLOT, build_provider
from rules.conditions import REQUEST_CLASSES, Conditions
from rules.model import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_FALLBACK_ON,
    DEFAULT_LEDGER_DAYS,
    DEFAULT_MAX_BODY_MB,
    DEFAULT_TIMEOUT_S,
    BetaPolicy,
    CountTokensPolicy,
    Defaults,
    KeySource,
    Provider,
    Route,
    RuleSet,
    ServerConfig,
    Target,
)
from rules.presets import PRESETS
from rules.semantics import route_names

__all__ = ["render_toml", "toml_key", "toml_string"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# TOML basic strings must escape '"', '\\' and the control characters other than tab; tab is
# escaped too, so a reader sees it.
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
# Comments may hold any character but these control characters (TOML 1.0).
_COMMENT_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# An array longer than this on one line is written one item per line.
_LINE_WIDTH = 96
_PROVIDER_DEFAULTS = Provider(name="", base_url="", key=())


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    return _SHORT_ESCAPES.get(c) or f"\\u{ord(c):04X}"


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string: ``'a "b"'`` -> ``"a \\"b\\""``."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, value) + '"'


def toml_key(key: str) -> str:
    """``key`` as a TOML key: bare when it can be (``zai``, ``x-extra``), quoted otherwise."""
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def _number(value: float) -> str:
    if isinstance(value, bool):  # bool is an int; never meant here
        raise TypeError(f"expected a number, got {value!r}")
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))  # "300" reads better than "300.0" and loads equal
    return repr(value)


def _inline(pairs: Iterable[tuple[str, str]]) -> str:
    """An inline table from already rendered values."""
    body = ", ".join(f"{toml_key(k)} = {v}" for k, v in pairs)
    return f"{{ {body} }}" if body else "{}"


def _array(items: Sequence[str]) -> str:
    """An array from already rendered items; one item per line when it would be long."""
    one_line = "[" + ", ".join(items) + "]"
    if len(one_line) <= _LINE_WIDTH:
        return one_line
    inner = "".join(f"    {item},\n" for item in items)
    return f"[\n{inner}]"


def _key_source(source: KeySource) -> str:
    if source.kind == "oauth_file" and not source.ref:
        return _inline([("oauth_file", "true")])  # the default location
    if source.kind == "client":
        return _inline([("client", "true")])
    return _inline([(source.kind, toml_string(source.ref))])


def _key_chain(chain: Sequence[KeySource]) -> str:
    if len(chain) == 1:
        return _key_source(chain[0])
    return _array([_key_source(s) for s in chain])


def _strings(values: Iterable[str]) -> list[str]:
    return [toml_string(v) for v in values]


def _codes(codes: Iterable[int]) -> str:
    return _array([str(c) for c in sorted(codes)])


def _betas(policy: BetaPolicy) -> str:
    if policy.mode == "allow":
        return _array(_strings(sorted(policy.allowed)))
    return toml_string(policy.mode)


def _count_tokens(policy: CountTokensPolicy) -> str:
    if policy.mode == "via":
        return _inline([("via", toml_string(policy.via or ""))])
    return toml_string(policy.mode)


def _one_or_list(values: Sequence[str]) -> str:
    return toml_string(values[0]) if len(values) == 1 else _array(_strings(values))


def _when(when: Conditions) -> str:
    pairs: list[tuple[str, str]] = []
    if when.request_class is not None:
        pairs.append(("request_class", _one_or_list([c for c in REQUEST_CLASSES if c in when.request_class])))
    if when.agent_type is not None:
        pairs.append(("agent_type", _one_or_list(when.agent_type)))
    if when.server_tools is not None:
        pairs.append(("server_tools", "true" if when.server_tools else "false"))
    return _inline(pairs)


def _target(target: Target) -> str:
    pairs = [("provider", toml_string(target.provider.name))]
    if target.model is not None:
        pairs.append(("model", toml_string(target.model)))
    if target.spill_at:
        # Quoted as docs/configuration.md writes them ("7d" = 0.85), though bare keys would do.
        windows = ", ".join(f"{toml_string(w)} = {_number(v)}" for w, v in target.spill_at)
        pairs.append(("spill_at", f"{{ {windows} }}"))
    return _inline(pairs)


def _server(server: ServerConfig) -> list[str]:
    lines: list[str] = []
    if server.host is not None:
        lines.append(f"host = {toml_string(server.host)}")
    if server.port is not None:
        lines.append(f"port = {server.port}")
    if server.client_keys:
        lines.append(f"client_keys = {_array([_key_source(k) for k in server.client_keys])}")
    if server.max_body_mb != DEFAULT_MAX_BODY_MB:
        lines.append(f"max_body_mb = {_number(server.max_body_mb)}")
    if server.ledger is not True:
        lines.append(f"ledger = {toml_string(server.ledger) if isinstance(server.ledger, str) else 'false'}")
    if server.ledger_days != DEFAULT_LEDGER_DAYS:
        lines.append(f"ledger_days = {server.ledger_days}")
    if server.allowed_hosts:
        lines.append(f"allowed_hosts = {_array([toml_string(h) for h in server.allowed_hosts])}")
    return lines


@cache
def _baseline(preset: str | None) -> Provider:
    """What a provider gets without writing a key: the built-in defaults, or its preset's values."""
    if preset is None:
        return _PROVIDER_DEFAULTS
    return build_provider("", {"preset": preset, "base_url": PRESETS[preset].base_url or ""}, Defaults())


def _provider(p: Provider, defaults_timeout: float, defaults_connect: float) -> list[str]:
    d = _baseline(p.preset)
    lines = [] if p.preset is None else [f"preset = {toml_string(p.preset)}"]
    if p.base_url != d.base_url:
        lines.append(f"base_url = {toml_string(p.base_url)}")
    if p.key:  # none: a preset that needs no key, and the file gave none
        lines.append(f"key = {_key_chain(p.key)}")
    if p.auth != d.auth and p.auth is not None:
        lines.append(f"auth = {toml_string(p.auth)}")
    if p.betas != d.betas:
        lines.append(f"betas = {_betas(p.betas)}")
    for field in ("thinking", "thinking_param", "system_turns", "tool_choice"):
        value = getattr(p, field)
        if value != getattr(d, field):
            lines.append(f"{field} = {toml_string(value)}")
    if p.count_tokens != d.count_tokens:
        lines.append(f"count_tokens = {_count_tokens(p.count_tokens)}")
    if p.drop_fields != d.drop_fields:
        lines.append(f"drop_fields = {_array(_strings(p.drop_fields))}")
    if p.strip_cache_control != d.strip_cache_control:
        lines.append(f"strip_cache_control = {'true' if p.strip_cache_control else 'false'}")
    if p.headers:
        lines.append(f"headers = {_inline((k, toml_string(v)) for k, v in p.headers)}")
    if p.timeout_s != defaults_timeout:
        lines.append(f"timeout_s = {_number(p.timeout_s)}")
    if p.connect_timeout_s != defaults_connect:
        lines.append(f"connect_timeout_s = {_number(p.connect_timeout_s)}")
    # max_queue means nothing without max_concurrent (the schema requires both), and the
    # loader derives it from max_concurrent when it is left out.
    if p.max_concurrent is not None:
        lines.append(f"max_concurrent = {p.max_concurrent}")
        if p.max_queue != QUEUE_PER_SLOT * p.max_concurrent:
            lines.append(f"max_queue = {p.max_queue}")
    return lines


def _route(route: Route, generated_name: str, defaults_fallback_on: frozenset[int]) -> list[str]:
    # A name the loader made up for a route without one ("route[2]") is left out: the
    # schema would not accept it, and the loader makes up the same one again.
    lines = [] if route.name == generated_name else [f"name = {toml_string(route.name)}"]
    if len(route.match) == 1:
        lines.append(f"match = {toml_string(route.match[0])}")
    else:
        lines.append(f"match = {_array(_strings(route.match))}")
    if route.when is not None:
        lines.append(f"when = {_when(route.when)}")
    if len(route.to) == 1 and route.to[0].model is None and not route.to[0].spill_at:
        lines.append(f"to = {toml_string(route.to[0].provider.name)}")
    else:
        lines.append(f"to = {_array([_target(t) for t in route.to])}")
    if route.fallback_on != defaults_fallback_on:
        lines.append(f"fallback_on = {_codes(route.fallback_on)}")
    return lines


def render_toml(ruleset: RuleSet, *, header: str | None = None) -> str:
    """routes.toml text for ``ruleset``; loading it gives an equal RuleSet.

    ``header``, when given, is written first as ``#`` comments (say where the rules came
    from).
    """
    out: list[str] = []
    if header:
        out += [f"# {_COMMENT_UNSAFE.sub('?', line)}".rstrip() for line in header.splitlines()]
        out.append("")
    out.append("version = 1")

    server = _server(ruleset.server)
    if server:
        out += ["", "[server]", *server]

    defaults = ruleset.defaults
    table: list[str] = []
    if defaults.timeout_s != DEFAULT_TIMEOUT_S:
        table.append(f"timeout_s = {_number(defaults.timeout_s)}")
    if defaults.connect_timeout_s != DEFAULT_CONNECT_TIMEOUT_S:
        table.append(f"connect_timeout_s = {_number(defaults.connect_timeout_s)}")
    if defaults.fallback_on != DEFAULT_FALLBACK_ON:
        table.append(f"fallback_on = {_codes(defaults.fallback_on)}")
    if table:
        out += ["", "[defaults]", *table]

    for name, provider in ruleset.providers.items():
        body = _provider(provider, defaults.timeout_s, defaults.connect_timeout_s)
        out += ["", f"[providers.{toml_key(name)}]", *body]

    generated = route_names({"route": [{} for _ in ruleset.routes]})
    for route, generated_name in zip(ruleset.routes, generated):
        out += ["", "[[route]]", *_route(route, generated_name, defaults.fallback_on)]
    return "\n".join(out) + "\n"
