"""The environment the commands read: the process's own, with ./.env filled in.

A ``.env`` file in the working directory is read first by serve, explain, validate and the
other commands (variables already set in the environment win over it), as the original proxy did.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from gateway.errors import UserError
from rules.errors import ConfigError

__all__ = ["environment", "load_dotenv_into"]


def load_dotenv_into(environ: MutableMapping[str, str]) -> None:
    """Fill ``environ`` from ./.env; variables it already has win (rules.discover reads the file)."""
    from rules.discover import apply_dotenv

    try:
        apply_dotenv(Path.cwd() / ".env", environ)
    except ConfigError as exc:  # unreadable, or not UTF-8: the message names the file and the fix
        raise UserError(exc.message) from None


def environment() -> dict[str, str]:
    """The process environment with ./.env filled in, as a copy (offline commands change nothing)."""
    env = dict(os.environ)
    load_dotenv_into(env)
    return env
