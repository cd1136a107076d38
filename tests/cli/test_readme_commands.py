"""README.md: the example config is valid, and the test command CI runs is the documented one."""

from __future__ import annotations

import re
import subprocess

from cli_support import REPO, Run

README = (REPO / "README.md").read_text(encoding="utf-8")


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", README, flags=re.DOTALL | re.MULTILINE)


def test_full_example_config_is_valid(run: Run) -> None:
    examples = [block for block in fenced_blocks("toml") if "[[route]]" in block]
    assert examples, "README.md has no routes.toml example"
    for block in examples:
        result = run("validate", "-", stdin=block, env={"ZAI_API_KEY": "x", "GATEWAY_CLIENT_KEY": "y"})
        assert result.code == 0, result.out + result.err


def test_test_command_between_markers_is_what_ci_runs() -> None:
    marked = re.search(r"^<!-- test-command -->\n```sh\n(.*?)\n```\n<!-- /test-command -->$", README, re.DOTALL | re.M)
    assert marked is not None
    assert marked.group(1) == ".venv/bin/pip install '.[test]' && .venv/bin/python -m pytest"
    # The command .ci/run extracts (and would eval) is exactly that line.
    printed = subprocess.run(
        [str(REPO / ".ci" / "run"), "--print-command"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == marked.group(1) + "\n"

def test_quick_start_is_two_commands() -> None:
    assert "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/gateway serve" in README
