"""``gateway code [--config F] [--port P] [--] [CLAUDE ARGS...]``, and ``start``, ``stop``, ``status``.

``gateway code`` is the one command to work through the gateway: it makes sure a gateway answers
at the config's address (starting one in the background, ``gateway.cli.background``, when none
does), then runs ``claude`` with the environment that points it there:

- ``ANTHROPIC_BASE_URL``: the gateway's URL;
- ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1``: nothing goes to the vendor behind its back;
- ``CLAUDE_CODE_GATEWAY_HINT_HEADERS=1`` when a route has ``when`` (request-class routing needs
  Claude Code's hint headers);
- ``ANTHROPIC_CUSTOM_HEADERS`` with ``x-gateway-key`` when the config has client keys;
- ``ANTHROPIC_AUTH_TOKEN`` set to a placeholder when no provider takes the client's credentials
  and there is no Claude login or key at all (the all-zai profile): Claude Code would otherwise
  ask for a login the gateway never uses.

Its own options come first; everything from the first other argument (or after ``--``) is
Claude Code's. On POSIX ``claude`` replaces this process (signals, exit code, the terminal are
its own); the background gateway keeps running for the next ``gateway code`` (``gateway stop``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from gateway.cli.environment import environment
from gateway.client_keys import HEADER, resolve_keys
from gateway.errors import UserError
from rules.model import KeySource, RuleSet

__all__ = ["INSTALL_HINT", "claude_environment", "cmd_code", "cmd_start", "cmd_status", "cmd_stop", "split_code_args"]

INSTALL_HINT = "npm install -g @anthropic-ai/claude-code"
_PLACEHOLDER_TOKEN = "gateway"  # never sent anywhere: no provider of such a config takes the client's
_OWN_OPTIONS = ("--config", "--port")


def split_code_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``gateway code``'s own leading options, and the rest (Claude Code's), split at the first
    argument that is not one of ours, or at ``--``."""
    ours: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            return ours, list(argv[index + 1:])
        if word in _OWN_OPTIONS:
            ours += argv[index:index + 2]
            index += 2
        elif word.startswith(tuple(f"{o}=" for o in _OWN_OPTIONS)) or (word in ("-h", "--help") and index == 0):
            ours.append(word)
            index += 1
        else:
            break
    return ours, list(argv[index:])


def _serve_options(args: argparse.Namespace) -> list[str]:
    """The options ``start`` passes on to ``serve`` (address, config and log file are set apart)."""
    options = ["--workers", str(args.workers), "--log-level", args.log_level, "--log-format", args.log_format]
    return options + (["--no-watch"] if args.no_watch else [])


def cmd_start(args: argparse.Namespace) -> int:
    from gateway.cli import background  # the HTTP client: only for the commands that need it

    env = environment()
    instance = background.find(args.config, args.host, args.port, env, Path.cwd())
    if args.log_file:
        instance = replace(instance, log_file=Path(args.log_file).expanduser().resolve())
    record, started = background.start(instance, _serve_options(args), env, Path.cwd())
    if started:
        print(f"Started the gateway in the background: {record.url} (pid {record.pid})\n"
              f"Config: {record.config}\nLog: {record.log}\nStop it with `gateway stop`.")
    else:
        print(f"Already running: {record.url} (pid {record.pid}); `gateway status` tells more.")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from gateway.cli import background

    instance = background.find(args.config, args.host, args.port, environment(), Path.cwd())
    lines, code = background.stop(instance)
    print("\n".join(lines), file=sys.stdout if code == 0 else sys.stderr)
    return code


def cmd_status(args: argparse.Namespace) -> int:
    from gateway.cli import background

    instance = background.find(args.config, args.host, args.port, environment(), Path.cwd())
    lines, code = background.status(instance)
    print("\n".join(lines))
    return code


def _has_login(env: Mapping[str, str]) -> bool:
    from gateway.upstream.credentials import oauth_path

    if any(env.get(n) for n in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN")):
        return True
    return Path(oauth_path(KeySource("oauth_file"), env)).is_file()


def claude_environment(base: Mapping[str, str], url: str, ruleset: RuleSet, env: Mapping[str, str]) -> dict[str, str]:
    """Claude Code's environment for the gateway at ``url``: ``base`` (this process's own) plus
    the variables in the module docstring. ``env``: where the client key's variable is read
    (the environment with ./.env)."""
    out = dict(base)
    out["ANTHROPIC_BASE_URL"] = url
    out.setdefault("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    if ruleset.conditional:
        out.setdefault("CLAUDE_CODE_GATEWAY_HINT_HEADERS", "1")
    sources = ruleset.server.client_keys
    if sources:
        keys = resolve_keys(sources, env).keys
        if not keys:
            names = ", ".join(s.ref for s in sources if s.kind == "env") or "server.client_keys"
            raise UserError(f"the gateway needs a client key and none is set: set {names} (see `gateway doctor`)")
        custom = out.get("ANTHROPIC_CUSTOM_HEADERS", "")
        if HEADER not in custom.lower():
            line = f"{HEADER}: {keys[0].decode('utf-8', 'surrogateescape')}"
            out["ANTHROPIC_CUSTOM_HEADERS"] = f"{custom}\n{line}" if custom.strip() else line
    takes_client = any(s.kind == "client" for p in ruleset.providers.values() for s in p.key)
    if not takes_client and not _has_login(out):
        out["ANTHROPIC_AUTH_TOKEN"] = _PLACEHOLDER_TOKEN
    return out


def cmd_code(args: argparse.Namespace) -> int:
    from gateway.cli import background

    env = environment()
    claude = shutil.which("claude", path=os.environ.get("PATH"))
    if claude is None:
        # Before anything starts: nothing is left running for a command that cannot go on.
        raise UserError(
            f"`claude` (Claude Code) is not installed, or not on the PATH: install it with `{INSTALL_HINT}` "
            "(or see https://code.claude.com/docs), then run `gateway code` again"
        )
    instance = background.find(args.config, None, args.port, env, Path.cwd())
    assert instance.found is not None  # find() raises when the config cannot be loaded without --port
    record, started = background.ensure_running(instance, env, Path.cwd())
    claude_env = claude_environment(os.environ, instance.url, instance.found.ruleset, env)
    if started:
        print(f"gateway: started in the background at {record.url} (pid {record.pid}; log {record.log}); "
              "`gateway stop` stops it", file=sys.stderr)
    else:
        serving = (background.gateway_answer(instance.url) or {}).get("config") or {}
        if serving.get("sha256") and serving["sha256"] != instance.found.ruleset.source.sha256:
            print(f"gateway: note: the gateway at {instance.url} does not serve {instance.found.origin} as it is "
                  f"on disk (it serves {serving.get('reason')}: another config, or a reload that failed); "
                  "`gateway status` tells more", file=sys.stderr)
    argv = [claude, *args.claude_args]
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execve(claude, argv, claude_env)  # Claude Code takes over this process
    import subprocess  # Windows: no exec that keeps the console; wait and pass its exit code on

    return subprocess.run(argv, env=claude_env).returncode
