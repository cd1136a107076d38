"""The commands that hand over to another part of the gateway: serve, routes, schema, init, doctor,
service, stats."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gateway.cli.environment import environment, load_dotenv_into
from gateway.cli.validate import STDIO, text_line
from gateway.errors import ConfigFailure, UsageError, UserError
from rules.errors import ConfigError

__all__ = [
    "DEFAULT_OUTPUT",
    "DEFAULT_PROFILE",
    "cmd_doctor",
    "cmd_init",
    "cmd_routes",
    "cmd_schema",
    "cmd_serve",
    "cmd_service",
    "cmd_stats",
]

DEFAULT_PROFILE = "mixed"
DEFAULT_OUTPUT = "routes.toml"


def cmd_serve(args: argparse.Namespace) -> int:
    # Into the real environment: the server (and each worker process it starts) reads it.
    load_dotenv_into(os.environ)
    from gateway.server.serve import serve  # Sanic and httpx: only when serving
    from gateway.settings import ServeOptions

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


def cmd_routes(args: argparse.Namespace) -> int:
    if not args.from_env:
        raise UsageError(
            "say where the routes come from: `gateway routes --from-env` renders the legacy "
            "environment (HAIKU_/SONNET_/OPUS_PROVIDER_*) as routes.toml",
            args.parser,
        )
    from rules.legacy import legacy_configured, legacy_header, load_legacy
    from rules.render import render_toml

    env = environment()
    if not legacy_configured(env):
        raise UserError(
            "no legacy variables are set: set HAIKU_PROVIDER_BASE_URL and HAIKU_PROVIDER_API_KEY "
            "(or the SONNET_/OPUS_ ones), in the environment or in ./.env, or start from a "
            "profile with `gateway init`"
        )
    try:
        ruleset = load_legacy(env)
    except ConfigError as exc:
        raise ConfigFailure(exc, "the legacy environment") from None
    for warning in ruleset.warnings:
        print(text_line(warning), file=sys.stderr)
    sys.stdout.write(render_toml(ruleset, header=legacy_header(env)))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from schemas import load_schema

    sys.stdout.write(json.dumps(load_schema(), indent=2) + "\n")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
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
        raise UserError(
            f"{output} already exists; add --force to overwrite it, or --output to write elsewhere"
        ) from None
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror}") from None
    check = "gateway validate" if output == Path(DEFAULT_OUTPUT) else f"gateway validate {output}"
    print(
        f"Wrote {output} (profile {args.profile!r}). Edit it, check it with `{check}`, then run "
        "`gateway code` (Claude Code through it) or `gateway serve`.",
        file=sys.stderr,
    )
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from gateway.ops.doctor import DoctorOptions, run

    return run(DoctorOptions(args.config, args.url, args.probe, args.timeout), environment(), Path.cwd())


def cmd_service(args: argparse.Namespace) -> int:
    from gateway.ops import service

    outcome = service.command(  # a ServiceError is a UserError: main() prints it
        args.action, config=args.config, root=args.root, platform=args.platform, show=args.print,
        env=environment(), cwd=Path.cwd(),
    )
    print("\n".join(outcome.lines))
    return outcome.code


def cmd_stats(args: argparse.Namespace) -> int:
    if args.since is not None or args.by is not None:
        if args.url is not None:
            raise UsageError("--url asks the running gateway; --since and --by read the ledger file", args.parser)
        from gateway.ops.ledger import report

        sys.stdout.write(report.command(args.config, args.since, args.by, args.json, environment(), Path.cwd()))
        return 0
    from gateway.ops.stats import command

    sys.stdout.write(command(args.url, args.config, args.json, environment(), Path.cwd()))
    return 0
