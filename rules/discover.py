"""Where the rules come from: a file, the legacy environment, or the embedded default.

The order, first found wins::

    --config PATH          a file that must exist
    $GATEWAY_CONFIG        a file that must exist
    ./routes.toml          in the working directory
    legacy environment     when any HAIKU_/SONNET_/OPUS_PROVIDER_BASE_URL is set
    embedded default       every model to Anthropic

A path named by ``--config`` or ``$GATEWAY_CONFIG`` that does not exist is an error, never a
quiet fall through to the next source: a typo must not start a gateway that sends everything
to Anthropic. An empty ``$GATEWAY_CONFIG`` counts as unset, as empty variables do everywhere
here. Relative paths are taken from ``cwd``, and ``~`` is expanded (``.env`` files do not
expand it). Symlinks are kept as they are, not resolved: the watcher must see a ConfigMap's
symlink swap.

``.env`` in the working directory is read before discovery, as the original proxy did
(python-dotenv without override): ``apply_dotenv`` sets the variables the process does not
already have. ``${VAR}`` and ``${VAR:-default}`` in unquoted and double-quoted values are
expanded as python-dotenv does; single-quoted values are taken literally.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rules.errors import ConfigError, Problem
from rules.legacy import anthropic_base_url, legacy_base_url_variables, load_legacy
from rules.model import ConfigSource, RuleSet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "EMBEDDED_DEFAULT_FILE",
    "EMBEDDED_DEFAULT_TOML",
    "Discovery",
    "apply_dotenv",
    "discover",
    "embedded_default",
    "load_discovered",
    "parse_dotenv",
]

EMBEDDED_DEFAULT_FILE = "<embedded default>"

EMBEDDED_DEFAULT_TOML = """\
# The embedded default, used when there is no routes.toml and no legacy environment:
# every model goes to Anthropic, with the credentials the client sent (ANTHROPIC_API_KEY or
# ANTHROPIC_AUTH_TOKEN of Claude Code), or else the login of `claude` on this machine.
# $GATEWAY_ANTHROPIC_BASE_URL, when set, replaces the base URL.
version = 1

[providers.anthropic]
base_url = "https://api.anthropic.com"
key = [{ client = true }, { oauth_file = true }]

[[route]]
name = "default"
match = "*"
to = "anthropic"
"""


@dataclass(frozen=True)
class Discovery:
    """The source found: its kind, the file (for kind ``file``), and why, for the log and /health."""

    kind: Literal["file", "env", "default"]
    path: Path | None
    reason: str


def _explicit_file(raw: str, origin: str, fix: str, cwd: Path) -> Path:
    """The path named by ``--config`` or ``$GATEWAY_CONFIG``; ConfigError if it is not a file."""
    path = cwd / Path(raw).expanduser()
    problem: str | None = None
    if not path.exists():
        problem = f"config file not found: {path} (from {origin}); {fix}"
    elif path.is_dir():
        problem = f"config path is a directory, not a file: {path} (from {origin}); {fix}"
    if problem is not None:
        raise ConfigError(Problem(problem, file=raw))
    return path


def discover(config: str | None, env: Mapping[str, str], cwd: Path) -> Discovery:
    """Find the config source: ``--config`` (``config``), ``$GATEWAY_CONFIG``, ``./routes.toml``,
    the legacy environment, or the embedded default.

    Raises ConfigError when ``--config`` or ``$GATEWAY_CONFIG`` names a path that is not a file.
    """
    if config is not None:
        if not config.strip():
            raise ConfigError(Problem("--config is empty; give the path of a routes.toml"))
        fix = "check the path, or leave out --config to use ./routes.toml"
        return Discovery("file", _explicit_file(config, "--config", fix, cwd), f"--config {config}")

    named = (env.get("GATEWAY_CONFIG") or "").strip()
    if named:
        fix = "check the path, or unset GATEWAY_CONFIG to use ./routes.toml"
        path = _explicit_file(named, "$GATEWAY_CONFIG", fix, cwd)
        return Discovery("file", path, f"$GATEWAY_CONFIG={named}")

    local = cwd / "routes.toml"
    # A dangling symlink counts as present: loading it then fails with a clear error,
    # rather than silently serving the legacy or default rules.
    if local.is_symlink() or local.exists():
        return Discovery("file", local, "./routes.toml")

    variables = legacy_base_url_variables(env)
    if variables:
        return Discovery("env", None, "legacy environment: " + ", ".join(variables))
    return Discovery("default", None, "embedded default: no routes.toml and no legacy environment")


def embedded_default(env: Mapping[str, str]) -> RuleSet:
    """The embedded default's RuleSet, with ``$GATEWAY_ANTHROPIC_BASE_URL`` applied when set."""
    from rules.loader import compile_document

    document = tomllib.loads(EMBEDDED_DEFAULT_TOML)
    document["providers"]["anthropic"]["base_url"] = anthropic_base_url(env)
    return compile_document(
        document,
        file=EMBEDDED_DEFAULT_FILE,
        text=EMBEDDED_DEFAULT_TOML,
        source=ConfigSource("default"),
        env=env,
    )


def load_discovered(d: Discovery, env: Mapping[str, str]) -> RuleSet:
    """The RuleSet of a discovered source. Raises ConfigError when it is not a usable config."""
    if d.kind == "file":
        from rules.loader import load_file  # an unreadable file is its ConfigError too

        assert d.path is not None, "a file Discovery has a path"
        return load_file(d.path, env=env)
    if d.kind == "env":
        return load_legacy(env)
    return embedded_default(env)


# --- .env ---------------------------------------------------------------------------------

# Blanks only ([ \t]): an assignment never runs on to the next line.
_ASSIGNMENT = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.\-]*)[ \t]*=[ \t]*")
_EXPANSION = re.compile(r"\$\{([^}:]+)(?::-([^}]*))?\}")
_DOUBLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def _unescape_double(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _DOUBLE_ESCAPES.get(m.group(1), m.group()), value)


def parse_dotenv(text: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The assignments of a ``.env`` file, in order, with ``${VAR}`` expanded.

    Expansion looks in ``environ`` first, then in the file's earlier assignments (the
    process environment wins, as with python-dotenv's ``override=False``). Lines that are
    not assignments are skipped.
    """
    environ = environ if environ is not None else {}
    found: dict[str, str] = {}

    def expand(value: str) -> str:
        def one(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            current = environ.get(name) or found.get(name)
            return current if current else (default or "")

        return _EXPANSION.sub(one, value)

    pos = 0
    while pos < len(text):
        m = _ASSIGNMENT.match(text, pos)
        end_of_line = text.find("\n", pos)
        end_of_line = len(text) if end_of_line < 0 else end_of_line
        if m is None:
            pos = end_of_line + 1  # a comment, a blank line, or not an assignment
            continue
        key, pos = m.group(1), m.end()
        quote = text[pos : pos + 1]
        if quote in ("'", '"'):
            # A quoted value may span lines; an unclosed quote runs to the end of the line.
            close = pos + 1
            while True:
                close = text.find(quote, close)
                if close < 0 or quote == "'" or text[close - 1] != "\\":
                    break
                close += 1
            if close < 0:
                raw = text[pos + 1 : end_of_line]
                pos = end_of_line + 1
            else:
                raw = text[pos + 1 : close]
                next_line = text.find("\n", close)
                pos = len(text) if next_line < 0 else next_line + 1
            value = raw if quote == "'" else expand(_unescape_double(raw))
        else:
            raw = text[pos:end_of_line]
            pos = end_of_line + 1
            comment = re.search(r"\s#", raw)
            if comment is not None:
                raw = raw[: comment.start()]
            value = expand(raw.strip())
        found[key] = value
    return found


def apply_dotenv(path: Path, environ: MutableMapping[str, str] | None = None) -> tuple[str, ...]:
    """Set the variables of the ``.env`` file at ``path`` that ``environ`` lacks.

    ``environ`` defaults to ``os.environ`` (key sources read their variables from there at
    request time, so the values must land in the process environment). Returns the names set;
    nothing when the file does not exist.
    """
    target = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8-sig")  # Windows editors write a BOM
    except FileNotFoundError:
        return ()
    except OSError as e:
        raise ConfigError(Problem(f"cannot read {path}: {e.strerror or e}", file=str(path))) from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            Problem(f"{path} is not UTF-8 text ({e.reason}); save it as UTF-8", file=str(path))
        ) from None
    assigned: list[str] = []
    for name, value in parse_dotenv(text, target).items():
        if name not in target:
            target[name] = value
            assigned.append(name)
    return tuple(assigned)
