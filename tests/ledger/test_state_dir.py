"""The one per-user state directory: the ledger's, and the service log's on Linux and Windows."""

from __future__ import annotations

from pathlib import Path

from gateway.ops.service_files import service_paths
from gateway.paths import state_dir

HOME = Path("/home/u")


def test_linux_follows_xdg_state_home_when_absolute() -> None:
    assert state_dir({}, platform="linux", home=HOME) == HOME / ".local/state/claude-gateway"
    assert state_dir({"XDG_STATE_HOME": "/x/state"}, platform="linux", home=HOME) == Path("/x/state/claude-gateway")
    # The XDG spec: a relative path is invalid and ignored.
    assert state_dir({"XDG_STATE_HOME": "rel"}, platform="linux", home=HOME) == HOME / ".local/state/claude-gateway"
    assert state_dir({"XDG_STATE_HOME": "/x"}, platform="linux", home=HOME, rooted=True) == (
        HOME / ".local/state/claude-gateway"
    )


def test_macos_and_windows_use_their_own_places() -> None:
    assert state_dir({}, platform="macos", home=HOME) == HOME / "Library/Application Support/claude-gateway"
    assert state_dir({"LOCALAPPDATA": "/c/AppData/Local"}, platform="windows", home=HOME) == Path(
        "/c/AppData/Local/claude-gateway"
    )
    assert state_dir({}, platform="windows", home=HOME) == HOME / "AppData/Local/claude-gateway"


def test_the_service_log_lives_in_the_same_directory() -> None:
    env = {"XDG_STATE_HOME": "/x/state", "LOCALAPPDATA": "/c/local"}
    for platform in ("linux", "windows"):
        log = service_paths(platform, HOME, env, rooted=False).log_file  # type: ignore[arg-type]
        assert log.parent == state_dir(env, platform=platform, home=HOME)
