"""The ``gateway`` command line: ``serve``, and the offline commands that need no server.

::

    gateway code [--config F] [--port P] [--] [CLAUDE ARGS...]
    gateway start [serve's options]
    gateway stop|status [--config F] [--host H] [--port P]
    gateway statusline [--url U] [--timeout S]
    gateway serve [--config F] [--host H] [--port P] [--workers N] [--log-level L]
                  [--log-format text|json] [--log-file F] [--no-watch]
    gateway validate [F...] [--format text|json|github] [--strict]
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
so they import the rule engine alone and start fast; ``statusline``, run at every prompt render
of Claude Code, is dispatched before the parser is built and imports not even that.

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
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.errors import UsageError, UserError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gateway`` (for ``--help`` output and tests)."""
    from gateway.cli.parser import build_parser as build

    return build()


def _print_usage_error(exc: UsageError) -> None:
    if exc.parser is not None:
        exc.parser.print_usage(sys.stderr)
        print(f"Try '{exc.parser.prog} --help' for help.\n", file=sys.stderr)
    print(f"Error: {exc}", file=sys.stderr)


def _print_error(exc: UserError) -> None:
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
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["statusline"]:
        # Claude Code runs it at every prompt render: no parser of every command, no rule engine.
        from gateway.cli.statusline import run

        return run(words[1:])
    from gateway.errors import ConfigFailure, UsageError, UserError
    from rules.errors import ConfigError

    parser = build_parser()
    claude_args: list[str] | None = None
    if words[:1] == ["code"]:
        # gateway code's own options come first; the rest is Claude Code's, whatever it looks like.
        from gateway.cli.code import split_code_args

        ours, claude_args = split_code_args(words[1:])
        words = ["code", *ours]
    try:
        args, extras = parser.parse_known_args(words)
        if claude_args is not None:
            args.claude_args = claude_args
        if extras:
            # Reported by the subcommand's parser, so the usage shown is the command's own.
            raise UsageError(f"unrecognized arguments: {' '.join(extras)}", getattr(args, "parser", parser))
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except UsageError as exc:
        _print_usage_error(exc)
        return exc.exit_code
    except UserError as exc:
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
