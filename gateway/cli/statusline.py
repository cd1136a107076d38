"""``gateway statusline``: a Claude Code status-line command naming who answers this session.

Claude Code's UI shows the model it asked for (Sonnet) while GLM may be answering. In
``~/.claude/settings.json``::

    "statusLine": {"type": "command", "command": "gateway statusline"}

Claude Code runs the command at every prompt render with a JSON document on stdin (its
``session_id`` among others) and shows the first line it prints. This prints, for example::

    via zai glm-4.7 · plan 5h 42% 7d 61%

the provider and upstream model of this session's last request (``GET /sessions/{digest}``,
``gateway.ops.sessions``) and, when the gateway knows it, the Claude plan's usage (the
``quota`` list of ``GET /health``; nothing is said about it when there is none).

The gateway is the one at ``--url``, else at ``$ANTHROPIC_BASE_URL`` (the one Claude Code itself
uses: this command runs in its environment), else the config's address as ``gateway doctor``
finds it. The client key, when one is needed, comes from ``$ANTHROPIC_CUSTOM_HEADERS`` (the
``x-gateway-key`` line Claude Code sends), ``$GATEWAY_CLIENT_KEY``, or the config.

It must be fast and quiet: ``gateway.cli`` dispatches here before building the parser of every
command, nothing here imports the rule engine unless the config must be read, each request
waits ``--timeout`` seconds at most, and whatever goes wrong prints a short line, never a trace,
and exits 0 (Claude Code hides a failing status line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["cmd_statusline", "describe", "gateway_url", "run"]

_KEY_HEADER = "x-gateway-key"  # gateway.client_keys.HEADER, without importing the rule engine
_WINDOWS = ("5h", "7d")


def _options(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gateway statusline",
        description="Claude Code's status line: which provider and model served this session, and the plan's usage",
    )
    parser.add_argument("--url", metavar="U")
    parser.add_argument("--timeout", metavar="S", type=float, default=0.5)
    return parser.parse_args(argv)


def _key_from_headers(custom: str) -> str | None:
    for line in custom.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == _KEY_HEADER and value.strip():
            return value.strip()
    return None


def gateway_url(url: str | None, env: Mapping[str, str], cwd: Path) -> tuple[str, str | None]:
    """The gateway's URL and the client key to send (None: none known)."""
    key = _key_from_headers(env.get("ANTHROPIC_CUSTOM_HEADERS", "")) or env.get("GATEWAY_CLIENT_KEY") or None
    if url:
        return url.rstrip("/"), key
    if env.get("ANTHROPIC_BASE_URL"):
        return env["ANTHROPIC_BASE_URL"].rstrip("/"), key
    # Outside Claude Code's environment: as `gateway doctor` finds it (costs the rule engine).
    from gateway.client_keys import resolve_keys
    from gateway.settings import listen_address, load_config, local_url

    ruleset = load_config(None, env, cwd).ruleset
    if key is None:
        keys = resolve_keys(ruleset.server.client_keys, env).keys
        key = keys[0].decode("utf-8", "surrogateescape") if keys else None
    return local_url(*listen_address(ruleset)), key


def _quota(doc: Mapping[str, Any], provider: str | None) -> str:
    """``plan 5h 42% 7d 61%`` from /health's ``quota`` list (the session's provider first), or ""."""
    entries = [e for e in doc.get("quota") or [] if isinstance(e, dict) and isinstance(e.get("windows"), dict)]
    entries = [e for e in entries if any(w in e["windows"] for w in _WINDOWS)]
    if not entries:
        return ""
    entry = next((e for e in entries if e.get("provider") == provider), entries[0])
    parts = []
    for name in _WINDOWS:
        window = entry["windows"].get(name)
        if isinstance(window, dict) and isinstance(window.get("utilization"), (int, float)):
            mark = "!" if window.get("status") == "rejected" else ""
            parts.append(f"{name} {round(window['utilization'] * 100)}%{mark}")
    return f"plan {' '.join(parts)}" if parts else ""


def describe(served: Mapping[str, Any] | None, health: Mapping[str, Any]) -> str:
    """The status line from the session's last request (None: none yet) and the /health document."""
    provider = served.get("provider") if served else None
    if served is None:
        head = "via gateway: no request yet"
    elif provider is None:
        head = f"no route for {served.get('model')} ({served.get('status')})"
    else:
        head = f"via {provider} {served.get('upstream_model') or ''}".rstrip()
        status = served.get("status")
        if isinstance(status, int) and status >= 400:
            head += f" (last: {status})"
    quota = _quota(health, provider)
    return f"{head} · {quota}" if quota else head


def _session_id(stdin: Any) -> str | None:
    if stdin.isatty():
        return None  # run by hand: nothing to wait for
    try:
        doc = json.loads(stdin.read() or "{}")
    except ValueError:
        return None
    session = doc.get("session_id") if isinstance(doc, dict) else None
    return session if isinstance(session, str) and session else None


def _line(argv: Sequence[str], env: Mapping[str, str]) -> str:
    from gateway.ops import http
    from gateway.ops.sessions import session_digest

    options = _options(argv)
    session = _session_id(sys.stdin)
    url, key = gateway_url(options.url, env, Path.cwd())
    headers = {_KEY_HEADER: key} if key else {}
    try:
        answer = http.request("GET", url + "/health", headers=headers, timeout=options.timeout)
    except http.Unreachable:
        return f"gateway not answering at {url}"
    try:
        health = answer.json()
    except ValueError:
        health = None
    if not isinstance(health, dict) or "config" not in health:
        return f"no gateway at {url}"
    served: dict[str, Any] | None = None
    if session is not None:
        found = http.request("GET", f"{url}/sessions/{session_digest(session)}", headers=headers,
                             timeout=options.timeout)
        if found.status == 401:
            return "gateway: set its client key (ANTHROPIC_CUSTOM_HEADERS)"
        if found.status == 200:
            doc = found.json()
            served = doc if isinstance(doc, dict) else None
    return describe(served, health)


def run(argv: Sequence[str]) -> int:
    """Print the status line; always exit 0 (a usage mistake or ``--help`` aside)."""
    try:
        line = _line(argv, os.environ)
    except SystemExit:
        raise  # --help, or a usage mistake: argparse has printed it
    except Exception as exc:  # a status line must never show a trace
        line = f"gateway: {exc.__class__.__name__}"
        message = getattr(exc, "message", None) or str(exc)
        if message:
            line += f": {message.splitlines()[0][:80]}"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return 0


def cmd_statusline(args: argparse.Namespace) -> int:
    """The parser's entry (``gateway.cli.main`` calls ``run`` before building the parser)."""
    argv = (["--url", args.url] if args.url else []) + ["--timeout", str(args.timeout)]
    return run(argv)
