"""The ``gateway`` command line: ``serve``, and the offline commands that need no server.

::

    gateway serve [--config F] [--host H] [--port P] [--workers N] [--log-level L]
                  [--log-format text|json] [--log-file F] [--no-watch]
    gateway validate F... [--format text|json|github] [--strict]
    gateway explain MODEL [--config F] [--request FILE]
    gateway routes --from-env
    gateway schema
    gateway init [--profile NAME] [--force] [--output F]
    gateway doctor [--config F] [--url U] [--probe] [--timeout S]
    gateway service install|uninstall|status [--config F] [--root DIR] [--platform P] [--print]
    gateway stats [--url U] [--config F] [--json]
    gateway --version

Exit codes are click's: 0 success; 1 failure (``Error: ...`` on stderr; for ``validate``, a file
that is not valid); 2 a usage mistake (the usage, a hint, and ``Error: ...`` on stderr).

A ``.env`` file in the working directory is read first by serve, explain, validate and routes;
variables already set in the environment win over it.

Only ``serve`` imports the server (Sanic, httpx). The other commands run in CI jobs and editors,
so they import the rule engine alone and start fast.

``validate --format json`` prints one object (stable: fields may be added, never changed)::

    {"valid": false, "strict": false,
     "summary": {"files": 2, "invalid": 1, "errors": 1, "warnings": 1},
     "files": [{"file": "a.toml", "valid": false, "errors": 1, "warnings": 1,
                "problems": [{"severity": "error", "file": "a.toml", "line": 14,
                              "path": "route[2].to[0].provider", "message": "..."}, ...]}]}

``line`` is null and ``path`` is "" when unknown. ``valid`` is per file and overall, after
``--strict`` (which makes warnings fail).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, MutableMapping, NoReturn, Sequence

from gateway import __version__
from rules.errors import ConfigError, Problem

if TYPE_CHECKING:
    from rules.model import Provider, Route, RuleSet

__all__ = ["main", "build_parser", "CliError", "ConfigFailure", "UsageError"]

PROG = "gateway"
DEFAULT_PROFILE = "mixed"
DEFAULT_OUTPUT = "routes.toml"
STDIO = "-"


class CliError(Exception):
    """A failure the user can fix: printed as ``Error: message``, exit code 1."""

    exit_code = 1


class UsageError(CliError):
    """A command line that does not parse: printed with the usage and a hint, exit code 2."""

    exit_code = 2

    def __init__(self, message: str, parser: argparse.ArgumentParser | None = None) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    """argparse, with usage mistakes raised as UsageError instead of printed and exited."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self)


class ConfigFailure(CliError):
    """A config that cannot be used: its problems are printed, one per line, before the error."""

    def __init__(self, error: ConfigError, what: str = "the config") -> None:
        count = len(error.problems)
        super().__init__(
            f"{what} has {count} error{'s' if count != 1 else ''} (above); fix "
            f"{'it' if count == 1 else 'them'} and check with `gateway validate`"
        )
        self.problems = error.problems


def _print_usage_error(exc: UsageError) -> None:
    if exc.parser is not None:
        exc.parser.print_usage(sys.stderr)
        print(f"Try '{exc.parser.prog} --help' for help.\n", file=sys.stderr)
    print(f"Error: {exc}", file=sys.stderr)


# --- environment ---------------------------------------------------------------------------

def _load_dotenv_into(environ: MutableMapping[str, str]) -> None:
    """Fill ``environ`` from ./.env; variables it already has win (rules.discover reads the file)."""
    from rules.discover import apply_dotenv

    try:
        apply_dotenv(Path.cwd() / ".env", environ)
    except ConfigError as exc:  # unreadable, or not UTF-8: the message names the file and the fix
        raise CliError(exc.message) from None


def _environment() -> dict[str, str]:
    """The process environment with ./.env filled in, as a copy (offline commands change nothing)."""
    env = dict(os.environ)
    _load_dotenv_into(env)
    return env


# --- serve ---------------------------------------------------------------------------------

def _cmd_serve(args: argparse.Namespace) -> int:
    # Into the real environment: the server (and each worker process it starts) reads it.
    _load_dotenv_into(os.environ)
    from gateway.server.serve import ServeOptions, serve  # Sanic and httpx: only when serving

    options = ServeOptions(
        config=args.config,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        log_format=args.log_format,
        log_file=args.log_file,
        watch=not args.no_watch,
    )
    return serve(options)  # a ConfigError it raises is reported by main()


# --- validate ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _FileResult:
    file: str
    problems: list[Problem]

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems if p.severity == "warning")

    def valid(self, strict: bool) -> bool:
        return self.errors == 0 and not (strict and self.warnings)


def _check_file(name: str, env: Mapping[str, str]) -> _FileResult:
    from rules.loader import check_bytes

    shown = "<stdin>" if name == STDIO else name
    try:
        data = sys.stdin.buffer.read() if name == STDIO else Path(name).read_bytes()
    except FileNotFoundError:
        return _FileResult(shown, [Problem("no such file; check the path", file=shown)])
    except IsADirectoryError:
        return _FileResult(shown, [Problem("is a directory; give the path of a .toml file", file=shown)])
    except OSError as exc:
        return _FileResult(shown, [Problem(f"cannot read the file: {exc.strerror}", file=shown)])
    _, problems = check_bytes(data, file=shown, env=env)
    return _FileResult(shown, list(problems))


def _text_line(problem: Problem) -> str:
    if problem.severity == "warning":
        # The mark goes where the message starts, so "file:line: path:" stays parseable.
        problem = dataclasses.replace(problem, message=f"warning: {problem.message}")
    return problem.render()


def _github_escape(value: str, *, prop: bool) -> str:
    # GitHub's workflow-command encoding: data escapes %, CR, LF; properties also ':' and ','.
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def _github_line(problem: Problem, strict: bool) -> str:
    # Under --strict a warning fails the job, so it is annotated as the error it has become.
    level = "error" if problem.severity == "error" or strict else "warning"
    props = []
    if problem.file:
        props.append(f"file={_github_escape(problem.file, prop=True)}")
    if problem.line is not None:
        props.append(f"line={problem.line}")
    title = problem.path or "gateway validate"
    props.append(f"title={_github_escape(title, prop=True)}")
    return f"::{level} {','.join(props)}::{_github_escape(problem.message, prop=False)}"


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "severity": problem.severity,
        "file": problem.file,
        "line": problem.line,
        "path": problem.path,
        "message": problem.message,
    }


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _cmd_validate(args: argparse.Namespace) -> int:
    env = _environment()
    strict: bool = args.strict
    results = [_check_file(name, env) for name in args.files]
    invalid = sum(1 for r in results if not r.valid(strict))
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    out = sys.stdout

    if args.format == "json":
        document = {
            "valid": invalid == 0,
            "strict": strict,
            "summary": {"files": len(results), "invalid": invalid, "errors": errors, "warnings": warnings},
            "files": [
                {
                    "file": r.file,
                    "valid": r.valid(strict),
                    "errors": r.errors,
                    "warnings": r.warnings,
                    "problems": [_problem_json(p) for p in r.problems],
                }
                for r in results
            ],
        }
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        render: Callable[[Problem], str] = (
            (lambda p: _github_line(p, strict)) if args.format == "github" else _text_line
        )
        for result in results:
            for problem in result.problems:
                out.write(render(problem) + "\n")
    out.flush()

    verdict = "FAILED" if invalid else "OK"
    summary = (
        f"{verdict}: {_plural(len(results), 'file')} checked, {invalid} invalid, "
        f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"
    )
    if strict and warnings:
        summary += " (--strict: warnings fail)"
    print(summary, file=sys.stderr)
    return 1 if invalid else 0


# --- explain -------------------------------------------------------------------------------

def _load_config(config: str | None, env: Mapping[str, str]) -> tuple[RuleSet, str]:
    """The RuleSet serve would use (same discovery), and a line saying where it came from."""
    from rules.discover import discover, load_discovered

    found = discover(config, env, Path.cwd())
    try:
        ruleset = load_discovered(found, env)
    except ConfigError as exc:
        raise ConfigFailure(exc, str(found.path or "the config")) from None
    origin = f"{found.path} ({found.reason})" if found.path is not None else found.reason
    return ruleset, origin


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


def _wire_policy(provider: Provider) -> list[str]:
    """The provider's settings that differ from the built-in defaults, as ``key = value``."""
    from rules.model import Provider as ProviderClass
    from rules.redact import redact

    skip = {"name", "base_url", "key"}
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
        lines.append(f"{field.name} = {shown}")
    return lines


def _key_lines(provider: Provider, env: Mapping[str, str]) -> list[str]:
    """One line per key source: what it is (never the secret) and whether it yields a credential now."""
    from gateway.upstream.credentials import CredentialResolver, oauth_path

    lines: list[str] = []
    states = CredentialResolver(env).availability(provider)
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
        lines.append(f"{prefix}{what}: {status}")
    return lines


def _matched_by(route: Route, model: str) -> str:
    from rules.matching import Matcher

    index = Matcher([(p,) for p in route.match]).resolve(model)
    return route.match[index] if index >= 0 else "?"


def _cmd_explain(args: argparse.Namespace) -> int:
    env = _environment()
    ruleset, origin = _load_config(args.config, env)
    model: str = args.model
    route = ruleset.resolve(model)
    if route is None:
        raise CliError(
            f"no route matches model {model!r} in {origin}; routes: "
            f"{', '.join(ruleset.route_names) or 'none'} (add a pattern for it, "
            'or a last route with match = "*")'
        )
    out: list[str] = [
        f"model:  {model}",
        f"config: {origin}",
        f"route:  {route.name} (route[{route.index}]), matched by {_matched_by(route, model)!r}",
    ]
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
        out += [
            "",
            heading,
            f"  upstream URL:   {provider.base_url}/v1/messages",
            f"  upstream model: {upstream}{rewritten}",
            f"  key:            {keys[0] if keys else 'none'}",
            *(f"                  {line}" for line in keys[1:]),
            f"  wire policy:    {policy[0] if policy else 'defaults (request forwarded as sent)'}",
            *(f"                  {line}" for line in policy[1:]),
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
        raise CliError(f"cannot read the request file {name}: {exc.strerror}") from None
    try:
        request = load_request(data, model)
    except ValueError as exc:
        raise CliError(f"{'<stdin>' if name == STDIO else name}: {exc}") from None
    return preview_lines(route, request, env)


# --- routes, schema, init ------------------------------------------------------------------

def _cmd_routes(args: argparse.Namespace) -> int:
    if not args.from_env:
        raise UsageError(
            "say where the routes come from: `gateway routes --from-env` renders the legacy "
            "environment (HAIKU_/SONNET_/OPUS_PROVIDER_*) as routes.toml",
            args.parser,
        )
    from rules.legacy import legacy_configured, legacy_header, load_legacy
    from rules.render import render_toml

    env = _environment()
    if not legacy_configured(env):
        raise CliError(
            "no legacy variables are set: set HAIKU_PROVIDER_BASE_URL and HAIKU_PROVIDER_API_KEY "
            "(or the SONNET_/OPUS_ ones), in the environment or in ./.env, or start from a "
            "profile with `gateway init`"
        )
    try:
        ruleset = load_legacy(env)
    except ConfigError as exc:
        raise ConfigFailure(exc, "the legacy environment") from None
    for warning in ruleset.warnings:
        print(_text_line(warning), file=sys.stderr)
    sys.stdout.write(render_toml(ruleset, header=legacy_header(env)))
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from schemas import load_schema

    sys.stdout.write(json.dumps(load_schema(), indent=2) + "\n")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from gateway.cli.profiles import UnknownProfile, read_profile

    try:
        text = read_profile(args.profile)
    except UnknownProfile as exc:
        raise UsageError(f"--profile: {exc}", args.parser) from None
    if args.output == STDIO:
        sys.stdout.write(text)
        return 0
    output = Path(args.output)
    try:
        # "x" refuses an existing file atomically: no window between a check and the write.
        with output.open("w" if args.force else "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise CliError(
            f"{output} already exists; add --force to overwrite it, or --output to write elsewhere"
        ) from None
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror}") from None
    print(
        f"Wrote {output} (profile {args.profile!r}). Edit it, check it with "
        f"`gateway validate {output}`, then run `gateway serve`.",
        file=sys.stderr,
    )
    return 0


# --- operations: doctor, service, stats (gateway.ops.doctor, gateway.ops.service, gateway.ops.stats) ----

def _cmd_doctor(args: argparse.Namespace) -> int:
    from gateway.ops.doctor import DoctorOptions, run

    return run(DoctorOptions(args.config, args.url, args.probe, args.timeout), _environment(), Path.cwd())


def _cmd_service(args: argparse.Namespace) -> int:
    from gateway.ops import service

    try:
        outcome = service.command(
            args.action, config=args.config, root=args.root, platform=args.platform, show=args.print,
            env=_environment(), cwd=Path.cwd(),
        )
    except service.ServiceError as exc:
        raise CliError(str(exc)) from None
    print("\n".join(outcome.lines))
    return outcome.code


def _cmd_stats(args: argparse.Namespace) -> int:
    from gateway.ops.stats import StatsError, command

    try:
        sys.stdout.write(command(args.url, args.config, args.json, _environment(), Path.cwd()))
    except StatsError as exc:
        raise CliError(str(exc)) from None
    return 0


# --- parser --------------------------------------------------------------------------------

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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gateway`` (for ``--help`` output and tests)."""
    parser = _Parser(
        prog=PROG,
        description="Route each Claude Code model to the provider routes.toml names.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = _command(commands, "serve", _cmd_serve, "run the gateway")
    serve.add_argument(
        "--config",
        metavar="F",
        help="routes.toml to use (default: $GATEWAY_CONFIG, ./routes.toml, "
        "the legacy environment, the embedded default)",
    )
    serve.add_argument("--host", metavar="H", help="address to listen on (default: [server] host, or 127.0.0.1)")
    serve.add_argument("--port", metavar="P", type=_port, help="port to listen on (default: [server] port, or 8082)")
    serve.add_argument("--workers", metavar="N", type=_positive_int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--log-level",
        metavar="L",
        default="info",
        type=str.lower,
        choices=["debug", "info", "warning", "error", "critical"],
        help="debug, info (default), warning, error or critical",
    )
    serve.add_argument("--log-format", choices=["text", "json"], default="text", help="log lines (default text)")
    serve.add_argument("--log-file", metavar="F", help="write the log to this file instead of stderr")
    serve.add_argument("--no-watch", action="store_true", help="do not reload the config when it changes")

    validate = _command(commands, "validate", _cmd_validate, "check routes.toml files without running anything")
    validate.add_argument("files", nargs="+", metavar="F", help="config files to check (- reads stdin)")
    validate.add_argument(
        "--format",
        choices=["text", "json", "github"],
        default="text",
        help="text (file:line: path: message, the default), json, or github (workflow annotations)",
    )
    validate.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")

    explain = _command(commands, "explain", _cmd_explain, "show where a model name goes, and with which key")
    explain.add_argument("model", metavar="MODEL", help="a model name as Claude Code sends it: claude-haiku-5-5")
    explain.add_argument("--config", metavar="F", help="routes.toml to use (default: found as serve finds it)")
    explain.add_argument(
        "--request",
        metavar="FILE",
        help="also show this request (a Messages API body, or a captured request; - for stdin) as it "
        "would leave for each target: URL, headers and body as a diff, secrets redacted",
    )

    routes = _command(commands, "routes", _cmd_routes, "print the legacy environment as routes.toml")
    routes.add_argument(
        "--from-env",
        action="store_true",
        help="render HAIKU_/SONNET_/OPUS_PROVIDER_* and ANTHROPIC_DEFAULT_*_MODEL",
    )

    _command(commands, "schema", _cmd_schema, "print the JSON Schema of routes.toml (for editors)")

    init = _command(commands, "init", _cmd_init, "write a routes.toml from a profile")
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
        commands, "doctor", _cmd_doctor, "check the config, keys, the running gateway and Claude Code's settings"
    )
    doctor.add_argument("--config", metavar="F", help="routes.toml to check (default: found as serve finds it)")
    doctor.add_argument("--url", metavar="U", help="the gateway to check (default: the config's [server] address)")
    doctor.add_argument(
        "--probe", action="store_true", help="send a 1-token request to each provider (costs a token each)"
    )
    doctor.add_argument("--timeout", metavar="S", type=float, default=5.0, help="seconds per network check (default 5)")

    service = _command(
        commands, "service", _cmd_service, "run the gateway at login as a user service, restarted on failure"
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
        commands, "stats", _cmd_stats, "requests, tokens, errors and fallbacks per provider and model since start"
    )
    stats.add_argument("--url", metavar="U", help="the gateway to ask (default: the config's [server] address)")
    stats.add_argument(
        "--config", metavar="F", help="routes.toml for the address and client key (default: found as serve finds it)"
    )
    stats.add_argument("--json", action="store_true", help="print the JSON document of GET /stats")
    return parser


def _print_error(exc: CliError) -> None:
    for problem in getattr(exc, "problems", ()):
        print(problem.render(), file=sys.stderr)
    print(f"Error: {exc}", file=sys.stderr)


def _silence_stdout() -> None:
    # The reader of our stdout went away (`gateway schema | head`): point stdout at devnull so
    # the interpreter's final flush does not raise a second time.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 1 failure, 2 usage mistake)."""
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            # Reported by the subcommand's parser, so the usage shown is the command's own.
            raise UsageError(f"unrecognized arguments: {' '.join(extras)}", getattr(args, "parser", parser))
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except UsageError as exc:
        _print_usage_error(exc)
        return exc.exit_code
    except CliError as exc:
        _print_error(exc)
        return exc.exit_code
    except ConfigError as exc:
        failure = ConfigFailure(exc)
        _print_error(failure)
        return failure.exit_code
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except KeyboardInterrupt:
        return 130
