"""The checks a schema cannot express, on a document that already passed the schema.

Each check says what is wrong and how to fix it, at the config path of the culprit. Errors
make the config unusable; warnings (literal keys, unset variables, unused providers, patterns
that can never match) are reported by ``gateway validate`` and kept on the RuleSet.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from rules.conditions import REQUEST_CLASSES
from rules.locate import ConfigPath
from rules.patterns import is_catch_all
from rules.presets import PRESETS
from rules.redact import pasted_key, safe_url, secret_prefix
from rules.schema_messages import Finding, did_you_mean, show
from rules.shadowing import Shadowed

__all__ = ["check", "route_names", "shadowing"]

# Set by the gateway from `key` and `auth`, or by the HTTP layer: a config must not fight them.
_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key"})
_GATEWAY_HEADERS = frozenset({"x-gateway-key"})
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# Without these a Messages request is not one (or, for stream, not the one the client asked).
_REQUIRED_FIELDS = ("model", "messages", "max_tokens", "stream")

Doc = Mapping[str, Any]


def route_names(doc: Doc) -> list[str]:
    """Each route's name: its own, else ``route[N]``."""
    return [r.get("name", f"route[{i}]") for i, r in enumerate(doc["route"])]


def check(doc: Doc, env: Mapping[str, str] | None) -> list[Finding]:
    """Every semantic error and warning of a schema-valid document (shadowing aside)."""
    findings: list[Finding] = []
    providers: Mapping[str, Doc] = doc["providers"]
    findings += _provider_findings(providers, env)
    findings += _client_key_findings(doc.get("server", {}).get("client_keys", []), env)
    findings += _allowed_host_findings(doc.get("server", {}).get("allowed_hosts", []))
    findings += _route_findings(doc, providers)
    return findings


# --- providers ----------------------------------------------------------------------------

def _provider_findings(providers: Mapping[str, Doc], env: Mapping[str, str] | None) -> Iterator[Finding]:
    for name, provider in providers.items():
        at: ConfigPath = ("providers", name)
        yield from _preset_findings(provider, at)
        if "base_url" in provider:
            yield from _base_url_findings(provider["base_url"], at + ("base_url",))
        key = provider.get("key", [])  # absent: the schema or _preset_findings has said if it may be
        chain = key if isinstance(key, list) else [key]
        for index, source in enumerate(chain):
            where = at + (("key", index) if isinstance(key, list) else ("key",))
            effect = "this key source yields nothing" + (
                "; the next one in the chain is tried" if index < len(chain) - 1 else ""
            )
            yield from _key_source_findings(source, where, env, effect=effect)
        for header in provider.get("headers", {}):
            yield from _header_findings(header, at + ("headers", header))
        for index, field in enumerate(provider.get("drop_fields", [])):
            if field in _REQUIRED_FIELDS:
                yield Finding(
                    at + ("drop_fields", index),
                    f"{show(field)} cannot be dropped: every request needs it "
                    f"({', '.join(_REQUIRED_FIELDS)} stay)",
                )
        count_tokens = provider.get("count_tokens")
        if isinstance(count_tokens, Mapping):
            via = count_tokens["via"]
            if via not in providers:
                yield Finding(at + ("count_tokens", "via"), _unknown_provider(via, providers))


def _preset_findings(provider: Doc, at: ConfigPath) -> Iterator[Finding]:
    """What a preset leaves to the file: vllm's base_url, and the key of presets that need one."""
    if "preset" not in provider:
        return  # the schema required base_url and key
    preset = PRESETS[provider["preset"]]
    if "base_url" not in provider and preset.base_url is None:
        yield Finding(
            at,
            f"preset {show(preset.name)} has no public base URL: add base_url, the address your "
            'server listens on, such as base_url = "http://localhost:8000" (vLLM\'s default port; '
            "llama-server's is 8080)",
        )
    if "key" not in provider and preset.needs_key:
        yield Finding(
            at,
            f"missing required key 'key': preset {show(preset.name)} needs a credential; "
            f"add key = {preset.key_example}",
        )


def _base_url_findings(url: str, at: ConfigPath) -> Iterator[Finding]:
    # Every message shows the URL without user name, password, query and fragment: those are
    # where people put keys (https://user:key@host, ?key=...). Query names are said apart.
    shown = show(safe_url(url.partition("#")[0].partition("?")[0]))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        # urllib's reasons: a port that is not a number or out of range, unbalanced [IPv6].
        reason = "its port is not a number from 1 to 65535" if "port" in str(exc).lower() else "its host is not valid"
        yield Finding(at, f"base_url {shown} is not a valid URL: {reason}")
        return
    del port  # read only to have urlsplit check it
    if parts.username is not None or parts.password is not None:
        yield Finding(at, "base_url must not hold a user name or password (not shown): credentials come from `key`")
    elif not parts.hostname:
        yield Finding(at, f"base_url {shown} has no host name")
    if parts.query:
        query = safe_url("?" + parts.query)
        yield Finding(
            at,
            f"base_url {shown} must not have a query ({query}): "
            "the gateway appends each request's own path and query",
        )
    if parts.fragment:
        yield Finding(at, f"base_url {shown} must not have a fragment (#...)")


def _key_source_findings(
    source: Doc, at: ConfigPath, env: Mapping[str, str] | None, *, effect: str
) -> Iterator[Finding]:
    if "value" in source:
        prefix = secret_prefix(source["value"])
        kind = f"a key ({prefix}..., not shown)" if prefix else "a key"
        yield Finding(
            at + ("value",),
            f"{kind} is written in the file: anyone who can read the file has the secret; "
            'prefer { env = "NAME" } and set NAME in the environment',
            "warning",
        )
    for kind_of_source in ("env", "oauth_file"):
        pasted = pasted_key(at + (kind_of_source,), source.get(kind_of_source))
        if pasted is not None:
            yield Finding(at + (kind_of_source,), pasted)
            return  # a variable named after a key is not "unset": the message above says it all
    if "env" in source and env is not None:
        name = source["env"]
        state = "is not set" if name not in env else "is empty" if not env[name] else None
        if state is not None:
            yield Finding(at + ("env",), f"environment variable {name} {state} ({effect})", "warning")


def _client_key_findings(keys: Sequence[Doc], env: Mapping[str, str] | None) -> Iterator[Finding]:
    for index, source in enumerate(keys):
        at: ConfigPath = ("server", "client_keys", index)
        yield from _key_source_findings(source, at, env, effect="no client can use this key until it is set")


_HOST_NAME = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+(%[A-Za-z0-9._-]+)?\]|[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*")
_WITH_PORT = re.compile(r"([A-Za-z0-9._-]+|\[[^\]]*\]):[0-9]*")


def _allowed_host_findings(hosts: Sequence[str]) -> Iterator[Finding]:
    """Each entry is "*" or a bare host name / IP address: what the Host header holds, minus the port."""
    for index, host in enumerate(hosts):
        at: ConfigPath = ("server", "allowed_hosts", index)
        if host == "*" or _HOST_NAME.fullmatch(host):
            continue
        if "://" in host or "/" in host:
            bare = urlsplit(host if "://" in host else "//" + host).hostname or "gateway.lan"
            yield Finding(at, f"{show(host)} is a URL: give the host name alone, such as {show(bare)}")
        elif _WITH_PORT.fullmatch(host):
            name = host.rsplit(":", 1)[0]
            yield Finding(at, f"{show(host)} has a port: give {show(name)} alone (it is accepted on any port)")
        elif "*" in host:
            yield Finding(at, f"{show(host)}: only \"*\" alone is a wildcard (any Host); list each name")
        else:
            yield Finding(at, f"{show(host)} is not a host name (letters, digits, '-' and '.') or an IP address")


def _header_findings(header: str, at: ConfigPath) -> Iterator[Finding]:
    lowered = header.lower()
    if lowered in _CREDENTIAL_HEADERS:
        yield Finding(at, f"header {show(header)} cannot be set here: credentials come from `key` (and `auth`)")
    elif lowered in _GATEWAY_HEADERS:
        yield Finding(at, f"header {show(header)} cannot be set here: it carries the gateway's own client key, never sent upstream")
    elif lowered in _TRANSPORT_HEADERS:
        yield Finding(at, f"header {show(header)} cannot be set here: the gateway sets transport headers itself")


def _unknown_provider(name: str, providers: Mapping[str, Doc]) -> str:
    guess = did_you_mean(name, providers)
    hint = f"did you mean {show(guess)}? " if guess else ""
    return f"unknown provider {show(name)} ({hint}known: {', '.join(providers)})"


# --- routes -------------------------------------------------------------------------------

def _route_findings(doc: Doc, providers: Mapping[str, Doc]) -> Iterator[Finding]:
    routes: Sequence[Doc] = doc["route"]
    names = route_names(doc)
    first_use: dict[str, int] = {}
    catch_all = _catch_all_index(doc)
    used: set[str] = set()
    for index, route in enumerate(routes):
        at: ConfigPath = ("route", index)
        name = names[index]
        if name in first_use:
            yield Finding(
                at + ("name",),
                f"duplicate route name {show(name)} (route[{first_use[name]}] has it too; "
                "route names must be unique)",
            )
        first_use.setdefault(name, index)
        if catch_all is not None and index > catch_all:
            yield Finding(
                at + ("match",),
                f"this route can never match: route {show(names[catch_all])} above it matches "
                "every model with '*' and has no `when`; move this route above that one",
            )
        if "when" in route:
            yield from _when_findings(route["when"], at + ("when",))

        to = route["to"]
        if isinstance(to, str):
            used.add(to)
            if to not in providers:
                yield Finding(at + ("to",), _unknown_provider(to, providers))
        else:
            for position, target in enumerate(to):
                used.add(target["provider"])
                if target["provider"] not in providers:
                    yield Finding(at + ("to", position, "provider"), _unknown_provider(target["provider"], providers))
            if "spill_at" in to[-1]:
                yield Finding(
                    at + ("to", len(to) - 1, "spill_at"),
                    "spill_at on the route's last target: there is no later target to spill to; "
                    "add a target after this one (such as another provider) or remove spill_at",
                    "warning",
                )

    for provider in providers.values():
        count_tokens = provider.get("count_tokens")
        if isinstance(count_tokens, Mapping):
            used.add(count_tokens["via"])
    for name in providers:
        if name not in used:
            yield Finding(("providers", name), f"provider {show(name)} is not used by any route", "warning")


def _when_findings(when: Doc, at: ConfigPath) -> Iterator[Finding]:
    classes = when.get("request_class")
    if isinstance(classes, list) and set(classes) >= set(REQUEST_CLASSES):
        # With "unknown" in it, every request has one of them: the condition says nothing.
        yield Finding(
            at + ("request_class",),
            "request_class lists every request class, so it always holds; remove it"
            + ("" if len(when) > 1 else " (and `when` with it)"),
            "warning",
        )


def _and_list(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _patterns(route: Doc) -> list[str]:
    match = route["match"]
    return [match] if isinstance(match, str) else list(match)


def _catch_all_index(doc: Doc) -> int | None:
    """The first route with a ``*`` pattern and no ``when``: every route after it is an error.

    A catch-all with ``when`` lets the requests it does not take through to later routes.
    """
    for index, route in enumerate(doc["route"]):
        if "when" not in route and any(is_catch_all(p) for p in _patterns(route)):
            return index
    return None


def shadowing(doc: Doc, shadowed: Sequence[Shadowed]) -> list[Finding]:
    """Warnings for patterns earlier patterns cover (``find_shadowed``'s answer), worded."""
    names = route_names(doc)
    last = _catch_all_index(doc)
    findings: list[Finding] = []
    for s in shadowed:
        if last is not None and s.route > last:
            continue  # "can never match" is already an error for the whole route
        match = doc["route"][s.route]["match"]
        at: ConfigPath = ("route", s.route, "match") + ((s.position,) if isinstance(match, list) else ())
        here = [show(p) for r, p in s.covered_by if r == s.route]
        parts = [f"{_and_list(here)} earlier in this list"] if here else []
        parts += [f"{show(p)} of route {show(names[r])}" for r, p in s.covered_by if r != s.route]
        verb = "takes" if len(s.covered_by) == 1 else "take"
        said = f"{_and_list(parts)} {verb} every name it matches first"
        conditional = sorted({r for r, _ in s.covered_by if r != s.route and "when" in doc["route"][r]})
        if conditional:
            whose = f"route {show(names[conditional[0]])}" if len(conditional) == 1 else "those routes"
            said += f", and the `when` of {whose} holds whenever this route's does"
        findings.append(Finding(at, f"pattern {show(s.pattern)} can never match: {said}", "warning"))
    return findings
