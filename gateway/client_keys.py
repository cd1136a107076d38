"""Client keys: who may use this gateway (``server.client_keys``, sent as ``x-gateway-key``).

When routes.toml lists client keys, every request except ``GET /health`` must carry one of them
in ``x-gateway-key`` (Claude Code: ``ANTHROPIC_CUSTOM_HEADERS="x-gateway-key: ..."``); anything
else gets 401 ``authentication_error``. The check per request is ``gateway.server.access``; the
header is never forwarded (``gateway.wire.headers`` drops it). This module resolves and checks
the configured keys, for the server and for ``gateway doctor`` and ``gateway stats`` alike.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rules.errors import ConfigError, Problem
from rules.model import KeySource, RuleSet

__all__ = [
    "HEADER",
    "AcceptedKeys",
    "check_sources",
    "resolve_keys",
    "startup_problems",
]

HEADER = "x-gateway-key"

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
