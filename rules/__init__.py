"""The rule engine: routes.toml bytes -> validated, compiled, immutable RuleSet. No network, no server.

    from rules import load_file
    ruleset = load_file("routes.toml")          # ConfigError with every problem, located
    route = ruleset.resolve("claude-haiku-5-5")  # first matching route, or None

``rules`` never imports ``gateway``: it is pure and usable on its own (CI checks, editors).
"""

from rules.discover import Discovery, discover, embedded_default, load_discovered
from rules.errors import ConfigError, Problem
from rules.legacy import legacy_configured, load_legacy
from rules.loader import check_bytes, compile_document, load_bytes, load_file
from rules.model import (
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
    "PRESETS",
    "BetaPolicy",
    "ConfigError",
    "ConfigSource",
    "CountTokensPolicy",
    "Defaults",
    "Discovery",
    "KeySource",
    "Preset",
    "Problem",
    "Provider",
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
]
