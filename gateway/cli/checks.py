"""What ``gateway validate`` checks beyond the file itself: Claude Code's tiers, and a profile's needs.

- **Tiers**: Claude Code sends its three tier names (``CANONICAL_TIERS``: claude-haiku-5-5, ...,
  or ``ANTHROPIC_DEFAULT_*_MODEL`` when set); a config no route of which takes one of them
  answers every such request with an error. A warning names the tier.
- **Needs**: each profile (``examples/*.toml``, copied by ``gateway init``) says in its header
  what it needs to work, in one machine-readable line::

      # needs: ZAI_API_KEY, claude login

  Each item is one of: an environment variable (``UPPER_CASE``: set in the environment or
  ./.env?), ``claude login`` (Claude Code's login file, or an API key or token it would send),
  or a program (a lower-case word: on the PATH?). An item that is not met is a warning at the
  line that names it. A file without the line has no needs to check.

Warnings, never errors: the file is still valid, and ``--strict`` makes them fail.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.ops.health import CANONICAL_TIERS
from gateway.upstream.credentials import oauth_path
from rules.errors import Problem
from rules.model import KeySource, RuleSet

__all__ = ["NEEDS_PREFIX", "LOGIN", "coverage_warnings", "needs", "needs_warnings"]

NEEDS_PREFIX = "# needs:"
LOGIN = "claude login"

_VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_PROGRAM = re.compile(r"^[a-z][a-z0-9._-]*$")
# What Claude Code sends instead of its login, when set in its environment.
_LOGIN_STAND_INS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN")


def coverage_warnings(ruleset: RuleSet, env: Mapping[str, str], file: str | None) -> list[Problem]:
    """A warning per Claude Code tier name no route takes (canonical, and any override in ``env``)."""
    found: list[Problem] = []
    for tier, canonical in CANONICAL_TIERS.items():
        variable = f"ANTHROPIC_DEFAULT_{tier.upper()}_MODEL"
        names = [canonical] + ([env[variable]] if env.get(variable) else [])
        for name in names:
            if ruleset.resolve(name) is None:
                origin = f" (from {variable})" if name != canonical else ""
                found.append(Problem(
                    f"no route takes Claude Code's {tier} tier, {name!r}{origin}: its requests would get "
                    f"400 `matches no route`; add it to a route's match, or a last route with match = \"*\"",
                    file=file, severity="warning",
                ))
    return found


def needs(text: str) -> list[tuple[int, str]]:
    """The items of every ``# needs:`` line of ``text``, with their line numbers (1-based)."""
    items: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.lower().startswith(NEEDS_PREFIX):
            body = stripped[len(NEEDS_PREFIX):]
            items += [(number, item.strip()) for item in body.split(",") if item.strip()]
    return items


def needs_warnings(
    text: str, file: str | None, env: Mapping[str, str], *, known: Sequence[Problem] = ()
) -> list[Problem]:
    """A warning per need of the ``# needs:`` line that is not met here.

    ``known``: warnings already given (an unset variable a key source reads is not told twice).
    """
    told = " ".join(p.message for p in known)
    found: list[Problem] = []
    for line, item in needs(text):
        message = _unmet(item, env)
        if message is None or (_VARIABLE.match(item) and f"environment variable {item} is not set" in told):
            continue
        found.append(Problem(message, file=file, line=line, path="needs", severity="warning"))
    return found


def _unmet(item: str, env: Mapping[str, str]) -> str | None:
    """Why ``item`` is not met, or None when it is (or cannot be checked here)."""
    if _VARIABLE.match(item):
        if env.get(item):
            return None
        return f"this profile needs {item}, which is not set: export it, or put {item}=... in ./.env"
    if item.lower() == LOGIN:
        if sys.platform == "darwin":
            return None  # claude keeps the login in the Keychain there, which is not looked at
        path = oauth_path(KeySource("oauth_file"), env)
        if Path(path).is_file() or any(env.get(name) for name in _LOGIN_STAND_INS):
            return None
        return f"this profile needs a Claude login, and there is none in {path}: run `claude` and log in"
    if _PROGRAM.match(item):
        if shutil.which(item, path=env.get("PATH")) is not None:
            return None
        return f"this profile needs the program {item!r}, which is not on the PATH: install it"
    return f"this profile's needs line has an item the gateway cannot check: {item!r}"
