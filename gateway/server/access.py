"""Client keys: who may use this gateway (``server.client_keys``, sent as ``x-gateway-key``).

When routes.toml lists client keys, every request except ``GET /health`` must carry one of them
in ``x-gateway-key`` (Claude Code: ``ANTHROPIC_CUSTOM_HEADERS="x-gateway-key: ..."``); anything
else gets 401 ``authentication_error``. The header is checked here (from a request middleware
in gateway.server.app) and never forwarded (gateway.wire.headers drops it). No Sanic in this module:
``gateway doctor`` uses it too.

The accepted keys are resolved once per config generation, not per request: the check costs a
generation comparison and one ``hmac.compare_digest`` per configured key. Every key is compared
even after a match, so the time taken does not say which key matched.

Only ``env`` and ``value`` sources make sense here. ``oauth_file`` would turn someone's Claude
login into a password, and ``client`` would accept whatever the caller sends; both are refused
with a ConfigError at start (``check_sources``), and refused again per generation (fail closed:
no request passes) should a reload ever carry one.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

from gateway.reload.live import LiveConfig
from rules.errors import ConfigError, Problem
from rules.model import KeySource, RuleSet

__all__ = [
    "HEADER",
    "AcceptedKeys",
    "AccessControl",
    "check_sources",
    "resolve_keys",
    "startup_problems",
]

HEADER = "x-gateway-key"

log = logging.getLogger("gateway.access")

_USABLE_KINDS = ("env", "value")


def _kind_problem(index: int, source: KeySource) -> Problem | None:
    if source.kind in _USABLE_KINDS:
        return None
    why = (
        "a Claude login is not a gateway password"
        if source.kind == "oauth_file"
        else "it would accept whatever key the caller sends"
    )
    return Problem(
        f"{source.kind} cannot be a client key ({why}); use {{ env = \"GATEWAY_CLIENT_KEY\" }} "
        "or { value = \"...\" }",
        path=f"server.client_keys[{index}]",
    )


def check_sources(sources: Sequence[KeySource], *, file: str | None = None) -> None:
    """Raise ConfigError for client-key sources other than env and value."""
    problems = [p for i, s in enumerate(sources) if (p := _kind_problem(i, s)) is not None]
    if problems:
        raise ConfigError([Problem(p.message, file=file, path=p.path) for p in problems])


@dataclass(frozen=True, slots=True)
class AcceptedKeys:
    """The client keys of one config generation, ready to compare."""

    generation: int
    required: bool  # client_keys is set: a request needs a key
    keys: tuple[bytes, ...]  # the ones that resolved; empty + required = nobody gets in
    problems: tuple[str, ...] = ()  # for the operator's log, never for clients

    def accepts(self, presented: str | None) -> bool:
        """True when ``presented`` equals one of the keys (constant time per key)."""
        if not self.required:
            return True
        if not presented:
            return False
        candidate = presented.encode("utf-8", "surrogateescape")
        matched = False
        for key in self.keys:
            # No early exit: the time taken must not tell which key matched.
            matched |= hmac.compare_digest(candidate, key)
        return matched


def resolve_keys(sources: Sequence[KeySource], env: Mapping[str, str], generation: int = 0) -> AcceptedKeys:
    """Resolve client-key sources to the accepted key bytes; unusable sources become problems."""
    keys: list[bytes] = []
    problems: list[str] = []
    nonsense = False
    for index, source in enumerate(sources):
        bad = _kind_problem(index, source)
        if bad is not None:
            problems.append(bad.render())
            nonsense = True
            continue
        secret = env.get(source.ref) if source.kind == "env" else source.ref
        if not secret:
            problems.append(
                f"server.client_keys[{index}]: environment variable {source.ref} is not set, so this key "
                "accepts nobody; set it in the gateway's environment (or its .env file)"
            )
            continue
        keys.append(secret.encode("utf-8", "surrogateescape"))
    if nonsense:
        keys = []  # fail closed: a config with a nonsensical client key lets nobody in
    return AcceptedKeys(generation, bool(sources), tuple(keys), tuple(problems))


def startup_problems(ruleset: RuleSet, env: Mapping[str, str]) -> list[str]:
    """What to warn about at start: client keys that accept nobody."""
    accepted = resolve_keys(ruleset.server.client_keys, env)
    problems = list(accepted.problems)
    if accepted.required and not accepted.keys:
        problems.append("server.client_keys: no client key is usable: every request will be refused with 401")
    return problems


class AccessControl:
    """The per-worker gate: accepted keys cached per config generation.

    ``loopback``: the gateway listens on 127.0.0.1 or ::1 only, so nobody else can connect.
    """

    __slots__ = ("_live", "_env", "_accepted", "loopback", "log_format")

    def __init__(self, live: LiveConfig, env: Mapping[str, str], *, loopback: bool, log_format: str = "text") -> None:
        self._live = live
        self._env = env
        self.loopback = loopback
        self.log_format = log_format
        self._accepted = AcceptedKeys(-1, False, ())

    def current(self) -> AcceptedKeys:
        """The keys of the config served now (rebuilt when the generation changed)."""
        loaded = self._live.current
        accepted = self._accepted
        if accepted.generation != loaded.generation:
            accepted = resolve_keys(loaded.ruleset.server.client_keys, self._env, loaded.generation)
            for problem in accepted.problems:
                log.error("client keys: %s", problem)
            self._accepted = accepted
        return accepted

    def allows(self, headers: Mapping[str, str], *, bearer: bool = False) -> bool:
        """True when the request may be served (no keys configured, or it carries a valid one).

        ``bearer``: also take the key from ``Authorization: Bearer``. Only for the gateway's own
        endpoints (/metrics, /stats), which is what Prometheus's ``authorization`` setting
        sends; on proxied requests that header is the client's credential for the upstream.
        """
        accepted = self.current()
        if not accepted.required or accepted.accepts(headers.get(HEADER)):
            return True
        if bearer:
            scheme, _, token = (headers.get("authorization") or "").partition(" ")
            return scheme.lower() == "bearer" and accepted.accepts(token.strip())
        return False

    def shows_details(self, headers: Mapping[str, str]) -> bool:
        """Whether /health may list providers, routes and tiers to this caller.

        Always on a loopback bind; elsewhere only to a caller with a valid client key (with no
        client keys configured on a LAN bind, nobody gets the details).
        """
        if self.loopback:
            return True
        accepted = self.current()
        return accepted.required and accepted.accepts(headers.get(HEADER))

    @staticmethod
    def refusal_reason(headers: Mapping[str, str]) -> str:
        """``missing`` or ``invalid``: for the log and the metrics."""
        return "invalid" if headers.get(HEADER) else "missing"

    def refusal(self, headers: Mapping[str, str]) -> str:
        """The 401 message: what was wrong with the request, never what the keys are."""
        if not headers.get(HEADER):
            return (
                f"this gateway requires a client key in the {HEADER} header (Claude Code: "
                f"ANTHROPIC_CUSTOM_HEADERS=\"{HEADER}: <key>\"); ask the gateway's operator for one"
            )
        return f"the {HEADER} header does not hold a key this gateway accepts"

