"""The example configs ``gateway init --profile NAME`` starts from.

They are the files of the repository's ``examples/`` directory. An installed wheel carries them
as ``gateway/profiles/*.toml`` (pyproject.toml maps ``examples/`` there); a source checkout or
an editable install has no such directory, so the repository's ``examples/`` next to the
package is used instead. Either way there is one set of files, never a copy to keep in step.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.errors import UserError

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; importlib.abc has it on 3.10
    from importlib.abc import Traversable

__all__ = ["profile_dir", "profile_names", "read_profile", "UnknownProfile"]


class UnknownProfile(UserError):
    """A profile name with no file; the message lists the names that exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown profile {name!r} (profiles: {', '.join(known) or 'none found'})")


def profile_dir() -> Traversable:
    """The directory holding the ``*.toml`` profiles (installed wheel first, then the checkout)."""
    installed = files("gateway") / "profiles"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "examples"


def profile_names() -> list[str]:
    """The profile names, sorted: ``["all-zai", "anthropic-only", "fallback", "lan", "mixed"]``."""
    directory = profile_dir()
    if not directory.is_dir():
        return []
    return sorted(
        entry.name[: -len(".toml")]
        for entry in directory.iterdir()
        if entry.name.endswith(".toml") and entry.is_file()
    )


def read_profile(name: str) -> str:
    """The text of profile ``name``; raises ``UnknownProfile`` listing the known names."""
    known = profile_names()
    if name not in known:
        raise UnknownProfile(name, known)
    return (profile_dir() / f"{name}.toml").read_text(encoding="utf-8")
