"""``gateway init``: a routes.toml from a profile; never overwriting without --force."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import EXAMPLES, PROFILES, Run


def test_default_profile_is_mixed(run: Run, workdir: Path) -> None:
    result = run("init")
    assert result.code == 0, result.err
    written = (workdir / "routes.toml").read_text(encoding="utf-8")
    assert written == (EXAMPLES / "mixed.toml").read_text(encoding="utf-8")
    # No file named: the form that also checks what the profile needs here (its `# needs:` line).
    assert "check it with `gateway validate`, then run `gateway code`" in result.err


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_writes_a_valid_file(run: Run, workdir: Path, profile: str) -> None:
    result = run("init", "--profile", profile, "--output", f"{profile}.toml")
    assert result.code == 0, result.err
    written = (workdir / f"{profile}.toml").read_text(encoding="utf-8")
    assert written == (EXAMPLES / f"{profile}.toml").read_text(encoding="utf-8")
    assert run("validate", f"{profile}.toml").code == 0


def test_refuses_to_overwrite_without_force(run: Run, workdir: Path) -> None:
    target = workdir / "routes.toml"
    target.write_text("# mine\n", encoding="utf-8")
    result = run("init", "--profile", "all-zai")
    assert result.code == 1
    assert result.err.startswith("Error: routes.toml already exists") and "--force" in result.err
    assert target.read_text(encoding="utf-8") == "# mine\n"

    forced = run("init", "--profile", "all-zai", "--force")
    assert forced.code == 0
    assert target.read_text(encoding="utf-8") == (EXAMPLES / "all-zai.toml").read_text(encoding="utf-8")


def test_unknown_profile_lists_the_profiles(run: Run, workdir: Path) -> None:
    result = run("init", "--profile", "all-zia")
    assert result.code == 2
    assert result.err.splitlines()[-1] == (
        "Error: --profile: unknown profile 'all-zia' (profiles: " + ", ".join(PROFILES) + ")"
    )
    assert not (workdir / "routes.toml").exists()


def test_output_dash_writes_stdout(run: Run, workdir: Path) -> None:
    result = run("init", "--profile", "lan", "--output", "-")
    assert result.code == 0
    assert result.out == (EXAMPLES / "lan.toml").read_text(encoding="utf-8")
    assert not (workdir / "routes.toml").exists()


def test_unwritable_output_is_exit_1(run: Run, workdir: Path) -> None:
    result = run("init", "--output", str(workdir / "no-such-dir" / "routes.toml"))
    assert result.code == 1
    assert result.err.startswith("Error: cannot write ")
