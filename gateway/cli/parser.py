"""The argument parser of ``gateway``: every command, its options and its help."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from gateway import __version__
from gateway.cli.code import cmd_code, cmd_start, cmd_status, cmd_stop
from gateway.cli.commands import (
    DEFAULT_OUTPUT,
    DEFAULT_PROFILE,
    cmd_doctor,
    cmd_init,
    cmd_routes,
    cmd_schema,
    cmd_serve,
    cmd_service,
    cmd_stats,
)
from gateway.cli.explain import cmd_explain
from gateway.cli.statusline import cmd_statusline
from gateway.cli.validate import cmd_validate
from gateway.errors import UsageError
from rules.conditions import REQUEST_CLASSES

__all__ = ["PROG", "build_parser"]

PROG = "gateway"


class _Parser(argparse.ArgumentParser):
    """argparse, with usage mistakes raised as UsageError instead of printed and exited."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _port(text: str) -> int:
    # 1 to 65535, as routes.toml's [server] port: 0 ("any free port") would leave Claude Code
    # nothing to point ANTHROPIC_BASE_URL at.
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1 to 65535)")
    return value


def _command(
    subparsers: Any, name: str, handler: Callable[[argparse.Namespace], int], help: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help, description=help)
    parser.set_defaults(handler=handler, parser=parser)
    return parser


def _address_options(parser: argparse.ArgumentParser, *, host: bool = True) -> None:
    parser.add_argument(
        "--config",
        metavar="F",
        help="routes.toml to use (default: $GATEWAY_CONFIG, ./routes.toml, "
        "the legacy environment, the embedded default)",
    )
    if host:
        parser.add_argument("--host", metavar="H", help="address to listen on (default: [server] host, or 127.0.0.1)")
    parser.add_argument("--port", metavar="P", type=_port, help="port to listen on (default: [server] port, or 8082)")


def _serve_options(parser: argparse.ArgumentParser) -> None:
    """serve's options, which ``gateway start`` takes too."""
    _address_options(parser)
    parser.add_argument("--workers", metavar="N", type=_positive_int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--log-level",
        metavar="L",
        default="info",
        type=str.lower,
        choices=["debug", "info", "warning", "error", "critical"],
        help="debug, info (default), warning, error or critical",
    )
    parser.add_argument("--log-format", choices=["text", "json"], default="text", help="log lines (default text)")
    parser.add_argument("--log-file", metavar="F", help="write the log to this file instead of stderr")
    parser.add_argument("--no-watch", action="store_true", help="do not reload the config when it changes")


def _background_commands(commands: Any) -> None:
    """code, start, stop, status, statusline: working through a gateway in the background."""
    code = _command(
        commands, "code", cmd_code,
        "run Claude Code through the gateway, starting one in the background if none answers",
    )
    _address_options(code, host=False)
    code.add_argument(
        "claude_args", nargs=argparse.REMAINDER, metavar="CLAUDE ARGS",
        help="passed to `claude` (everything after gateway code's own options, or after --)",
    )
    start = _command(commands, "start", cmd_start, "run the gateway in the background (serve's options)")
    _serve_options(start)
    for name, handler, text in (
        ("stop", cmd_stop, "stop the gateway `gateway start` started"),
        ("status", cmd_status, "is a gateway running at the config's address? (exit 3 if not)"),
    ):
        _address_options(_command(commands, name, handler, text))
    statusline = _command(
        commands, "statusline", cmd_statusline,
        "Claude Code's status line: which provider and model served this session, and the plan's usage",
    )
    statusline.add_argument("--url", metavar="U", help="the gateway to ask (default: $ANTHROPIC_BASE_URL, "
                            "else the config's [server] address)")
    statusline.add_argument("--timeout", metavar="S", type=float, default=0.5,
                            help="seconds to wait for the gateway (default 0.5)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gateway`` (for ``--help`` output and tests)."""
    parser = _Parser(
        prog=PROG,
        description="Route each Claude Code model to the provider routes.toml names.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _background_commands(commands)  # first in --help: `gateway code` is where a person starts

    serve = _command(commands, "serve", cmd_serve, "run the gateway")
    _serve_options(serve)

    validate = _command(commands, "validate", cmd_validate, "check routes.toml files without running anything")
    validate.add_argument(
        "files", nargs="*", metavar="F",
        help="config files to check (- reads stdin); none: the config `gateway serve` would load here, "
        "with warnings for what would fail running it (a Claude Code tier no route takes, a profile's needs)",
    )
    validate.add_argument(
        "--format",
        choices=["text", "json", "github"],
        default="text",
        help="text (file:line: path: message, the default), json, or github (workflow annotations)",
    )
    validate.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")

    explain = _command(commands, "explain", cmd_explain, "show where a model name goes, and with which key")
    explain.add_argument("model", metavar="MODEL", help="a model name as Claude Code sends it: claude-haiku-5-5")
    explain.add_argument("--config", metavar="F", help="routes.toml to use (default: found as serve finds it)")
    explain.add_argument(
        "--request",
        metavar="FILE",
        help="also show this request (a Messages API body, or a captured request; - for stdin) as it "
        "would leave for each target: URL, headers and body as a diff, secrets redacted",
    )
    explain.add_argument(
        "--request-class",
        metavar="C",
        choices=REQUEST_CLASSES,
        help="the route a request of this class takes (what Claude Code sends in x-claude-code-request-class: "
        + ", ".join(REQUEST_CLASSES) + ")",
    )
    explain.add_argument("--agent-type", metavar="T", help="with a subagent's type (x-claude-code-agent-type): general-purpose")
    explain.add_argument(
        "--server-tools", action="store_true", help="for a request whose tools include an Anthropic server tool (web_search...)"
    )

    routes = _command(commands, "routes", cmd_routes, "print the legacy environment as routes.toml")
    routes.add_argument(
        "--from-env",
        action="store_true",
        help="render HAIKU_/SONNET_/OPUS_PROVIDER_* and ANTHROPIC_DEFAULT_*_MODEL",
    )

    _command(commands, "schema", cmd_schema, "print the JSON Schema of routes.toml (for editors)")

    init = _command(commands, "init", cmd_init, "write a routes.toml from a profile")
    init.add_argument(
        "--profile",
        metavar="NAME",
        default=DEFAULT_PROFILE,
        help=f"all-zai, anthropic-only, fallback, lan or mixed (default {DEFAULT_PROFILE})",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument(
        "--output", metavar="F", default=DEFAULT_OUTPUT, help=f"file to write (default {DEFAULT_OUTPUT}; - is stdout)"
    )

    doctor = _command(
        commands, "doctor", cmd_doctor, "check the config, keys, the running gateway and Claude Code's settings"
    )
    doctor.add_argument("--config", metavar="F", help="routes.toml to check (default: found as serve finds it)")
    doctor.add_argument("--url", metavar="U", help="the gateway to check (default: the config's [server] address)")
    doctor.add_argument(
        "--probe", action="store_true", help="send a 1-token request to each provider (costs a token each)"
    )
    doctor.add_argument("--timeout", metavar="S", type=float, default=5.0, help="seconds per network check (default 5)")

    service = _command(
        commands, "service", cmd_service, "run the gateway at login as a user service, restarted on failure"
    )
    service.add_argument("action", choices=["install", "uninstall", "status"], help="install, uninstall or status")
    service.add_argument(
        "--config", metavar="F", help="routes.toml the service runs with (default: found as serve finds it)"
    )
    service.add_argument(
        "--root",
        metavar="DIR",
        help="write below DIR instead of your home, and run no service manager (also $GATEWAY_SERVICE_ROOT)",
    )
    service.add_argument(
        "--platform",
        choices=["linux", "macos", "windows"],
        help="the service file of another OS (with --root or --print)",
    )
    service.add_argument("--print", action="store_true", help="print the service file instead of installing it")

    stats = _command(
        commands, "stats", cmd_stats,
        "requests, tokens, errors and fallbacks per provider and model: since start, or from the ledger",
    )
    stats.add_argument("--url", metavar="U", help="the gateway to ask (default: the config's [server] address)")
    stats.add_argument(
        "--config", metavar="F", help="routes.toml for the address and client key (default: found as serve finds it)"
    )
    stats.add_argument("--json", action="store_true", help="print the JSON document (of GET /stats, or of the ledger)")
    stats.add_argument(
        "--since",
        metavar="S",
        help="read the usage ledger instead of the running gateway: the last 90m, 24h, 7d, 2w, "
        "or since a date (2026-01-05); works when the gateway is not running",
    )
    stats.add_argument(
        "--by",
        choices=["provider", "route", "model", "class", "day"],
        help="with the ledger (--since, default 7d): one row per provider (default), route, "
        "client model -> upstream model, request class or local day",
    )
    return parser
