"""Fixtures running the installed ``gateway`` console script in a clean, throwaway environment.

Every test runs the real script (the one next to ``sys.executable``) in a subprocess, from an
empty working directory, with HOME pointed at a temporary directory and every variable the
gateway reads removed: the developer's own ``~/.claude`` login, ``.env`` or ``ZAI_API_KEY``
must not change what a test sees.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_support import GATEWAY, Result, Run, clean_environment


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory (no routes.toml, no .env)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty HOME: no ~/.claude login unless a test writes one."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def run(workdir: Path, home: Path) -> Run:
    """``run("validate", "f.toml", env={...})``: the console script's exit code, stdout and stderr.

    ``env`` adds to the clean environment; ``program`` replaces the script (``python -m gateway``).
    """

    def _run(
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdin: str | None = None,
        program: list[str] | None = None,
    ) -> Result:
        full_env = clean_environment(home)
        full_env.update(env or {})
        done = subprocess.run(
            [*(program or [str(GATEWAY)]), *args],
            cwd=cwd or workdir,
            env=full_env,
            input=stdin if stdin is not None else "",  # never the terminal's stdin
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return _run
