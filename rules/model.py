"""The compiled rules: immutable values the gateway reads on every request.

A ``RuleSet`` is built once per config version (by ``rules.loader`` or ``rules.legacy``) and
never changes afterwards; a reload builds a new one and swaps the reference. Everything here
is a frozen dataclass, so a request that took a RuleSet at entry keeps a consistent view of
it until it finishes, whatever reloads happen meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from rules.conditions import Conditions, RequestFacts
from rules.errors import Problem
from rules.presets import PRESETS
from rules.redact import redact
from rules.resolution import Answer, Candidates, Resolver

__all__ = [
    "AuthForm",
    "BetaPolicy",
    "ConfigSource",
    "CountTokensPolicy",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_FALLBACK_ON",
    "DEFAULT_LEDGER_DAYS",
    "DEFAULT_MAX_BODY_MB",
    "DEFAULT_OAUTH_FILE",
    "DEFAULT_TIMEOUT_S",
    "Defaults",
    "KeyKind",
    "KeySource",
    "Provider",
    "Route",
    "RuleSet",
    "ServerConfig",
    "SourceKind",
    "SystemTurnsPolicy",
    "Target",
    "ThinkingParamPolicy",
    "ThinkingPolicy",
    "ToolChoicePolicy",
]

KeyKind = Literal["env", "value", "oauth_file", "client"]
AuthForm = Literal["x-api-key", "bearer"]
ThinkingPolicy = Literal["foreign", "strip", "keep"]
ThinkingParamPolicy = Literal["keep", "drop", "no_budget"]
SystemTurnsPolicy = Literal["keep", "merge"]
ToolChoicePolicy = Literal["keep", "auto"]
SourceKind = Literal["file", "env", "default"]
# Where a provider's effective value came from: the file, a preset ("preset zai"), or neither.
Origin = str

DEFAULT_FALLBACK_ON: frozenset[int] = frozenset({429, 500, 502, 503, 504, 529})
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_MAX_BODY_MB = 32.0
DEFAULT_LEDGER_DAYS = 30
DEFAULT_OAUTH_FILE = "~/.claude/.credentials.json"
# The quota windows Anthropic reports for a Claude plan (anthropic-ratelimit-unified-*).
QUOTA_WINDOWS: tuple[str, ...] = ("5h", "7d", "7d_oi")


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where a credential comes from.

    ``ref`` is the environment variable name (env), the literal secret (value), the
    credentials file path as written, or "" for the default location (oauth_file), and ""
    for client.
    """

    kind: KeyKind
    ref: str = ""

    def describe(self) -> str:
        """A human description that never shows a secret: ``env ZAI_API_KEY``, ``value sk-...abcd``."""
        if self.kind == "env":
            return f"env {self.ref}"
        if self.kind == "value":
            return f"value {redact(self.ref)}"
        if self.kind == "oauth_file":
            return f"oauth_file {self.ref or 'default (' + DEFAULT_OAUTH_FILE + ')'}"
        return "client"


@dataclass(frozen=True, slots=True)
class BetaPolicy:
    """What to do with the client's ``anthropic-beta`` values: forward, drop, or allow a list."""

    mode: Literal["forward", "drop", "allow"] = "forward"
    allowed: frozenset[str] = frozenset()

    def apply(self, header: str | None) -> str | None:
        """The ``anthropic-beta`` value to send upstream (None: send no header)."""
        if header is None or self.mode == "forward":
            return header
        if self.mode == "drop":
            return None
        kept = [b for b in (v.strip() for v in header.split(",")) if b in self.allowed]
        return ",".join(kept) or None


@dataclass(frozen=True, slots=True)
class CountTokensPolicy:
    """How ``/v1/messages/count_tokens`` is answered for a provider."""

    mode: Literal["forward", "estimate", "reject", "via"] = "forward"
    via: str | None = None  # the provider asked when mode == "via"

    def describe(self) -> str:
        return f"via {self.via}" if self.mode == "via" else self.mode


@dataclass(frozen=True, slots=True)
class Provider:
    """An upstream: where it is, how to authenticate, and what it accepts on the wire.

    ``key`` may be empty only for a provider whose preset needs no key (ollama, vllm): then
    no credential is sent, and the client's credentials are not passed on either.
    """

    name: str
    base_url: str  # without a trailing slash
    key: tuple[KeySource, ...]  # a chain: the first source that yields a credential wins; () = none
    auth: AuthForm | None = None  # None: the form the key source implies
    betas: BetaPolicy = BetaPolicy()
    thinking: ThinkingPolicy = "foreign"
    thinking_param: ThinkingParamPolicy = "keep"
    count_tokens: CountTokensPolicy = CountTokensPolicy()
    system_turns: SystemTurnsPolicy = "keep"
    tool_choice: ToolChoicePolicy = "keep"
    drop_fields: tuple[str, ...] = ()
    strip_cache_control: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    max_concurrent: int | None = None
    max_queue: int | None = None
    preset: str | None = None  # the `preset` it names, if any
    # The routes.toml keys the file wrote for this provider: with `preset`, where each value
    # came from. Provenance only: two providers that behave alike compare equal.
    file_keys: frozenset[str] = field(default_factory=frozenset, compare=False)
    header_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Lower-cased once per config, for the per-request header merge.
        object.__setattr__(self, "header_names", frozenset(name.lower() for name, _ in self.headers))

    def origin(self, key: str) -> Origin:
        """Where the value of routes.toml key ``key`` came from: ``"file"``, ``"preset zai"``, or
        ``"default"`` (neither: the built-in default, or the ``[defaults]`` table for timeouts).
        """
        if key in self.file_keys:
            return "file"
        if self.preset is not None and PRESETS[self.preset].fills(key):
            return f"preset {self.preset}"
        return "default"

    @property
    def origins(self) -> dict[str, Origin]:
        """``origin(key)`` of every key the file or the preset set: ``{"base_url": "preset zai", ...}``."""
        keys = set(self.file_keys) - {"preset"}
        if self.preset is not None:
            keys |= {k for k in _PROVIDER_KEYS if PRESETS[self.preset].fills(k)}
        return {k: self.origin(k) for k in _PROVIDER_KEYS if k in keys}

    def policy(self) -> dict[str, object]:
        """The wire-policy settings that differ from the defaults, as written in routes.toml."""
        out: dict[str, object] = {}
        if self.auth is not None:
            out["auth"] = self.auth
        if self.betas.mode != "forward":
            out["betas"] = self.betas.mode if self.betas.mode == "drop" else sorted(self.betas.allowed)
        for name, default in (
            ("thinking", "foreign"),
            ("thinking_param", "keep"),
            ("system_turns", "keep"),
            ("tool_choice", "keep"),
        ):
            if getattr(self, name) != default:
                out[name] = getattr(self, name)
        if self.count_tokens.mode != "forward":
            out["count_tokens"] = (
                {"via": self.count_tokens.via} if self.count_tokens.mode == "via" else self.count_tokens.mode
            )
        if self.drop_fields:
            out["drop_fields"] = list(self.drop_fields)
        if self.strip_cache_control:
            out["strip_cache_control"] = True
        if self.headers:
            out["headers"] = sorted(name for name, _ in self.headers)  # names only: values may be secret
        if self.max_concurrent is not None:
            out["max_concurrent"] = self.max_concurrent
        return out

    @property
    def rewrites_body(self) -> bool:
        """True when some policy other than ``thinking`` may change the request body."""
        return bool(
            self.thinking_param != "keep"
            or self.system_turns != "keep"
            or self.tool_choice != "keep"
            or self.drop_fields
            or self.strip_cache_control
        )


# routes.toml's provider keys, in the schema's order (for `origins`).
_PROVIDER_KEYS = (
    "base_url", "key", "auth", "betas", "thinking", "thinking_param", "system_turns", "tool_choice",
    "count_tokens", "drop_fields", "strip_cache_control", "headers", "timeout_s", "connect_timeout_s",
    "max_concurrent", "max_queue",
)


@dataclass(frozen=True, slots=True)
class Target:
    """One place a route sends a request: a provider, and optionally the model to ask it for.

    ``spill_at``: (window, utilization) pairs in ``QUOTA_WINDOWS`` order, such as
    ``(("7d", 0.85),)``: the target steps aside while its credential's last reported
    utilization of that window is at or above the value (the gateway decides; this is config).
    """

    provider: Provider
    model: str | None = None  # None: the client's model is sent unchanged
    spill_at: tuple[tuple[str, float], ...] = ()

    def upstream_model(self, client_model: str) -> str:
        return self.model if self.model is not None else client_model


@dataclass(frozen=True, slots=True)
class Route:
    """Model-name patterns, the conditions on the request, and the targets, the first first."""

    name: str
    match: tuple[str, ...]
    to: tuple[Target, ...]
    fallback_on: frozenset[int] = DEFAULT_FALLBACK_ON
    index: int = 0  # position in the config, for messages
    when: Conditions | None = None  # None: every request whose model matches


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The ``[server]`` table. ``None`` means "not set here": the command line or built-in default applies."""

    host: str | None = None
    port: int | None = None
    client_keys: tuple[KeySource, ...] = ()
    max_body_mb: float = DEFAULT_MAX_BODY_MB
    # The usage ledger's file: True the state directory's ledger.db, False none, else a path as written.
    ledger: str | bool = True
    ledger_days: int = DEFAULT_LEDGER_DAYS
    # Host names (or IP addresses) the gateway answers to besides loopback and its bind address;
    # "*" for any. Lower case, no port.
    allowed_hosts: tuple[str, ...] = ()

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


@dataclass(frozen=True, slots=True)
class Defaults:
    """The ``[defaults]`` table, already merged with the built-in defaults."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    fallback_on: frozenset[int] = DEFAULT_FALLBACK_ON


@dataclass(frozen=True, slots=True)
class ConfigSource:
    """Where a RuleSet came from, for /health and the startup log."""

    kind: SourceKind
    path: str | None = None  # the file, for kind == "file"
    sha256: str | None = None  # of the file's bytes, for kind == "file"

    def describe(self) -> str:
        if self.kind == "file":
            return f"file {self.path}"
        if self.kind == "env":
            return "legacy environment (HAIKU_/SONNET_/OPUS_PROVIDER_*)"
        return "embedded default (no routes.toml found)"


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A compiled config. ``resolve(model, facts)`` picks the route for a request.

    ``conditional``: some route has ``when`` (else the facts never matter and the gateway
    need not build them). ``uses_server_tools``: some route's ``when`` has ``server_tools``
    (only then must the gateway look at the body's tools).
    """

    providers: Mapping[str, Provider]
    routes: tuple[Route, ...]
    server: ServerConfig = ServerConfig()
    defaults: Defaults = Defaults()
    source: ConfigSource = ConfigSource("default")
    warnings: tuple[Problem, ...] = ()
    conditional: bool = field(init=False, compare=False)
    uses_server_tools: bool = field(init=False, compare=False)
    _resolver: Resolver[Route] = field(init=False, repr=False, compare=False)
    _answers: dict[str, Answer[Route]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Read-only view, so no holder of a RuleSet can change what others see.
        object.__setattr__(self, "providers", MappingProxyType(dict(self.providers)))
        resolver = Resolver(self.routes)
        object.__setattr__(self, "_resolver", resolver)
        object.__setattr__(self, "_answers", resolver.answers)
        whens = [r.when for r in self.routes if r.when is not None]
        object.__setattr__(self, "conditional", bool(whens))
        object.__setattr__(self, "uses_server_tools", any(w.server_tools is not None for w in whens))

    def resolve(self, model: str, facts: RequestFacts | None = None) -> Route | None:
        """The first route whose patterns match ``model`` (case-insensitive) and whose ``when``
        holds for ``facts``, or None. ``facts=None`` means a request without hint headers."""
        # The hot path, inlined: one dict lookup, then (for a name whose first matching route
        # has no `when`, every name of a model-only config) the answer itself.
        hit = self._answers.get(model)
        if hit is None:
            hit = self._resolver.answer(model)
        if type(hit) is Candidates:
            return hit.pick(facts)
        return hit or None  # type: ignore[return-value]  # a Route, or NO_ROUTE (empty): None

    def candidates(self, model: str) -> tuple[Route, ...]:
        """Every route ``model`` can reach under some facts, in order: the routes whose
        patterns match, up to and including the first without ``when`` (for ``gateway explain``)."""
        hit = self._answers.get(model)
        if hit is None:
            hit = self._resolver.answer(model)
        if isinstance(hit, Candidates):
            return hit.routes
        return (hit,) if hit else ()

    @property
    def route_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.routes)
