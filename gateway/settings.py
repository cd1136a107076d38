"""How the gateway is set up to run: the config it finds, where it listens, what each worker gets.

One place for what every command needs to agree on: ``serve``, ``doctor``, ``stats``,
``service`` and ``explain`` find and load the config with ``load_config`` (so each sees the
config ``serve`` would use), and compute the gateway's address with ``listen_address`` and
``local_url``. No Sanic here: the offline commands import this module and must start fast.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.client_keys import check_sources
from rules.discover import Discovery, discover, load_discovered
from rules.model import RuleSet

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "FoundConfig",
    "ServeOptions",
    "WorkerSettings",
    "find_config",
    "is_loopback",
    "listen_address",
    "load_config",
    "local_url",
    "response_timeout",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8082


@dataclass(frozen=True)
class FoundConfig:
    """The config found as ``serve`` finds it, loaded and checked."""

    discovery: Discovery
    ruleset: RuleSet

    @property
    def origin(self) -> str:
        """Where it came from, for messages: ``routes.toml (./routes.toml in the working directory)``."""
        found = self.discovery
        return f"{found.path} ({found.reason})" if found.path is not None else found.reason


def find_config(config: str | None, env: Mapping[str, str], cwd: Path) -> Discovery:
    """Where the config comes from (``--config``, ``$GATEWAY_CONFIG``, ./routes.toml, legacy,
    default), without loading it. Raises ``ConfigError`` for a --config that is not a file."""
    return discover(config, env, cwd)


def load_config(config: str | None, env: Mapping[str, str], cwd: Path) -> FoundConfig:
    """Find (``--config``, ``$GATEWAY_CONFIG``, ./routes.toml, legacy, default), load and check.

    Raises ``rules.errors.ConfigError`` with every problem, located.
    """
    found = find_config(config, env, cwd)
    ruleset = load_discovered(found, env)
    check_sources(ruleset.server.client_keys, file=ruleset.source.path)
    return FoundConfig(found, ruleset)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 (also as ::ffff:127.0.0.1, from a dual-stack socket) and
    localhost: nobody else on the network can reach it, or be it."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def listen_address(ruleset: RuleSet | None, host: str | None = None, port: int | None = None) -> tuple[str, int]:
    """Where the gateway listens: the command line's host/port, else ``[server]``, else the defaults."""
    server = ruleset.server if ruleset is not None else None
    return (
        host or (server.host if server else None) or DEFAULT_HOST,
        port or (server.port if server else None) or DEFAULT_PORT,
    )


def local_url(host: str, port: int) -> str:
    """The URL a client on this machine uses to reach a gateway listening on ``host:port``.

    A wildcard bind (0.0.0.0, ::) is reached over loopback; IPv6 addresses get brackets.
    """
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@dataclass
class ServeOptions:
    """The command line of ``gateway serve``; None means "not given"."""

    config: str | None = None
    host: str | None = None
    port: int | None = None
    workers: int = 1
    log_level: str = "info"
    log_format: str = "text"
    log_file: str | None = None
    watch: bool = True


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker needs to build its app; resolved once by the main process (picklable)."""

    discovery: Discovery
    host: str
    port: int
    log_level: str = "info"
    log_format: str = "text"
    watch: bool = True
    log_file: str | None = None


def response_timeout(ruleset: RuleSet) -> float:
    """Sanic's RESPONSE_TIMEOUT: never shorter than the slowest fallback chain may legitimately take.

    Sanic's default (60 s) would cut long non-streaming calls; our own per-provider timeouts
    do the real work, this is the outer bound.
    """
    chains = [sum(t.provider.connect_timeout_s + t.provider.timeout_s for t in r.to) for r in ruleset.routes]
    return max(chains, default=600.0) + 60.0
