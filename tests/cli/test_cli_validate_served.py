"""``gateway validate`` without files: the config ``serve`` would load here, and what would fail.

As ``nginx -t``: no argument checks the config in use (found as ``serve`` finds it) and says
which; it also warns when a Claude Code tier has no route, or a profile's ``# needs:`` line is
not met on this machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import EXAMPLES, Run

from gateway.cli.checks import LOGIN, needs, needs_warnings

HAIKU_ONLY = """\
version = 1

[providers.zai]
base_url = "https://api.z.ai/api/anthropic"
key = { client = true }

[[route]]
name = "haiku"
match = "claude-haiku-*"
to = "zai"
"""


def test_without_files_it_checks_the_embedded_default_and_says_so(run: Run) -> None:
    result = run("validate")
    assert result.code == 0, result.err
    assert result.err.splitlines()[0] == (
        "checking embedded default: no routes.toml and no legacy environment: the config `gateway serve` would load here"
    )
    assert result.out == ""


def test_a_tier_without_a_route_is_a_warning(run: Run, workdir: Path) -> None:
    (workdir / "routes.toml").write_text(HAIKU_ONLY)
    result = run("validate")
    assert result.code == 0
    assert result.err.startswith("checking routes.toml (./routes.toml): ")
    lines = result.out.splitlines()
    assert lines == [
        f"routes.toml: warning: no route takes Claude Code's {tier} tier, 'claude-{tier}-5-5': its requests "
        "would get 400 `matches no route`; add it to a route's match, or a last route with match = \"*\""
        for tier in ("sonnet", "opus")
    ]
    assert run("validate", "--strict").code == 1
    # A file named on the command line is checked as before: the file alone.
    assert run("validate", "routes.toml").out == ""


def test_a_tier_override_without_a_route_is_a_warning(run: Run, workdir: Path) -> None:
    (workdir / "routes.toml").write_text(HAIKU_ONLY.replace('"claude-haiku-*"', '"claude-*"'))
    result = run("validate", env={"ANTHROPIC_DEFAULT_SONNET_MODEL": "glm-4.7"})
    assert result.out.splitlines() == [
        "routes.toml: warning: no route takes Claude Code's sonnet tier, 'glm-4.7' (from "
        "ANTHROPIC_DEFAULT_SONNET_MODEL): its requests would get 400 `matches no route`; add it to a route's "
        "match, or a last route with match = \"*\""
    ]


def test_gateway_config_is_the_file_checked(run: Run, workdir: Path) -> None:
    (workdir / "routes.toml").write_text("not toml at all [")
    (workdir / "other.toml").write_text(HAIKU_ONLY.replace('"claude-haiku-*"', '"*"'))
    result = run("validate", env={"GATEWAY_CONFIG": "other.toml"})
    assert result.code == 0, result.out + result.err
    assert result.err.startswith("checking other.toml ($GATEWAY_CONFIG=other.toml): ")


def test_an_invalid_served_config_fails(run: Run, workdir: Path) -> None:
    (workdir / "routes.toml").write_text(HAIKU_ONLY.replace('to = "zai"', 'to = "zia"'))
    result = run("validate", "--format", "json")
    assert result.code == 1
    doc = json.loads(result.out)
    assert doc["valid"] is False and doc["config"] == "routes.toml (./routes.toml)"
    assert any("unknown provider 'zia'" in p["message"] for p in doc["files"][0]["problems"])


def test_the_mixed_profile_warns_for_each_missing_need(run: Run, workdir: Path, home: Path) -> None:
    assert run("init", "--profile", "mixed").code == 0
    result = run("validate")
    assert result.code == 0
    lines = result.out.splitlines()
    # The key is told once (by the key source that reads it), the login by the needs line.
    assert sum("ZAI_API_KEY" in line for line in lines) == 1
    assert lines[-1] == (
        f"routes.toml:2: needs: warning: this profile needs a Claude login, and there is none in "
        f"{home / '.claude' / '.credentials.json'}: run `claude` and log in"
    )
    # Met: the key in ./.env, a login file: nothing left to say, even under --strict.
    (workdir / ".env").write_text("ZAI_API_KEY=zai-test\n")
    (home / ".claude").mkdir()
    (home / ".claude" / ".credentials.json").write_text("{}")
    met = run("validate", "--strict")
    assert (met.code, met.out) == (0, "")


def test_a_program_need_is_looked_for_on_the_path(tmp_path: Path) -> None:
    text = "# needs: ollama, ZAI_API_KEY\n"
    [warning, variable] = needs_warnings(text, "r.toml", {"PATH": str(tmp_path)})
    assert (warning.line, warning.path) == (1, "needs")
    assert warning.message == "this profile needs the program 'ollama', which is not on the PATH: install it"
    assert variable.message.startswith("this profile needs ZAI_API_KEY, which is not set")
    program = tmp_path / "ollama"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    assert needs_warnings(text, "r.toml", {"PATH": str(tmp_path), "ZAI_API_KEY": "x"}) == []


@pytest.mark.parametrize("profile", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_every_profile_states_checkable_needs_in_its_header(profile: Path) -> None:
    text = profile.read_text()
    items = needs(text)
    assert items, f"{profile.name} has no '# needs:' line"
    assert all(line == 2 for line, _ in items), "the needs line is the header's second line"
    for _, item in items:
        assert item == LOGIN or item.isupper() or item.islower(), item
        [problem] = needs_warnings(f"# needs: {item}\n", "x", {"PATH": ""}) or [None]
        assert problem is None or "cannot check" not in problem.message
