"""Where the gateway keeps what it writes for itself: the per-user state directory.

One helper for every part that writes state (the service's log, the usage ledger, pid files),
so they agree on one directory per platform:

- Linux and other Unix: ``$XDG_STATE_HOME/claude-gateway``, else ``~/.local/state/claude-gateway``
  (the XDG Base Directory spec's place for state that outlives a restart but is not config);
- macOS: ``~/Library/Application Support/claude-gateway``;
- Windows: ``%LOCALAPPDATA%\\claude-gateway``, else ``~\\AppData\\Local\\claude-gateway``.

No Sanic, nothing but the standard library: the offline commands import it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["APP_NAME", "state_dir"]

APP_NAME = "claude-gateway"


def _platform() -> str:
    if sys.platform == "darwin":
        return "macos"
    if sys.platform.startswith("win"):
        return "windows"
    return "linux"


def state_dir(
    env: Mapping[str, str], *, platform: str | None = None, home: Path | None = None, rooted: bool = False
) -> Path:
    """The gateway's state directory for ``platform`` (default: this one); not created here.

    ``home``: the home directory (default: the user's). ``rooted``: ignore ``XDG_STATE_HOME`` and
    ``LOCALAPPDATA``, so everything stays below ``home`` (``gateway service --root``, tests).
    """
    platform = platform or _platform()
    home = Path.home() if home is None else home
    if platform == "macos":
        return home / "Library" / "Application Support" / APP_NAME
    if platform == "windows":
        local = env.get("LOCALAPPDATA")
        return (Path(local) if local and not rooted else home / "AppData" / "Local") / APP_NAME
    xdg = env.get("XDG_STATE_HOME")
    # The spec says a relative XDG path is invalid and must be ignored.
    base = Path(xdg) if xdg and not rooted and Path(xdg).is_absolute() else home / ".local" / "state"
    return base / APP_NAME
