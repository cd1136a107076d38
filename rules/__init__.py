"""The rule engine: routes.toml bytes -> validated, compiled, immutable RuleSet. No network, no server.

    from rules import RequestFacts, load_file
    ruleset = load_file("routes.toml")          # ConfigError with every problem, located
    route = ruleset.resolve("claude-haiku-5-5")  # first matching route, or None
    facts = RequestFacts.from_headers(headers)  # what Claude Code says about the request
    route = ruleset.resolve("claude-sonnet-5-5", facts)  # ... and routes whose `when` holds

``rules`` never imports ``gateway``: it is pure and usable on its own (CI checks, editors).
"""

from rules.conditions import (
    AGENT_TYPE_HEADER,
    REQUEST_CLASS_HEADER,
    REQUEST_CLASSES,
    Conditions,
    RequestFacts,
    server_tools_in,
)
from rules.discover import Discovery, discover, embedded_default, load_discovered
from rules.errors import ConfigError, Problem
from rules.legacy import legacy_configured, load_legacy
from rules.loader import check_bytes, compile_document, load_bytes, load_file
from rules.model import (
    QUOTA_WINDOWS,
    BetaPolicy,
    ConfigSource,
    CountTokensPolicy,
    Defaults,
    KeySource,
    Provider,
    Route,
    RuleSet,
    ServerConfig,
    Target,
)
from rules.presets import PRESETS, Preset, preset_for_url
from rules.redact import redact
from rules.render import render_toml

__all__ = [
    "AGENT_TYPE_HEADER",
    "QUOTA_WINDOWS",
    "REQUEST_CLASSES",
    "REQUEST_CLASS_HEADER",
    "PRESETS",
    "BetaPolicy",
    "Conditions",
    "ConfigError",
    "ConfigSource",
    "CountTokensPolicy",
    "Defaults",
    "Discovery",
    "KeySource",
    "Preset",
    "Problem",
    "Provider",
    "RequestFacts",
    "Route",
    "RuleSet",
    "ServerConfig",
    "Target",
    "check_bytes",
    "compile_document",
    "discover",
    "embedded_default",
    "legacy_configured",
    "load_bytes",
    "load_discovered",
    "load_file",
    "load_legacy",
    "preset_for_url",
    "redact",
    "render_toml",
    "server_tools_in",
]
