"""A ``.env`` in the working directory is read by validate, explain and routes; real variables win."""

from __future__ import annotations

import shutil
from pathlib import Path

from cli_support import EXAMPLES, Run

ONE_ROUTE = """\
version = 1

[providers.{name}]
base_url = "https://{name}.example"
key = {{ client = true }}

[[route]]
name = "{name}"
match = "*"
to = "{name}"
"""


def test_env_file_satisfies_validate(run: Run, workdir: Path) -> None:
    shutil.copy(EXAMPLES / "mixed.toml", workdir / "routes.toml")
    assert run("validate", "--strict", "routes.toml").code == 1  # ZAI_API_KEY unset: a warning
    (workdir / ".env").write_text("# keys\nZAI_API_KEY=zai-from-dotenv\n", encoding="utf-8")
    result = run("validate", "--strict", "routes.toml")
    assert result.code == 0, result.out + result.err


def test_env_file_feeds_explain_discovery_and_real_variables_win(run: Run, workdir: Path) -> None:
    for name in ("fromfile", "fromenv"):
        (workdir / f"{name}.toml").write_text(ONE_ROUTE.format(name=name), encoding="utf-8")
    (workdir / ".env").write_text("export GATEWAY_CONFIG=fromfile.toml\n", encoding="utf-8")

    from_file = run("explain", "claude-haiku-5-5")
    assert from_file.code == 0, from_file.err
    assert "target 1: provider fromfile" in from_file.out.splitlines()

    from_env = run("explain", "claude-haiku-5-5", env={"GATEWAY_CONFIG": "fromenv.toml"})
    assert "target 1: provider fromenv" in from_env.out.splitlines()


def test_env_file_syntax_quotes_comments_export(run: Run, workdir: Path) -> None:
    (workdir / ".env").write_text(
        "\n".join(
            [
                "# the original proxy's variables",
                "",
                'export HAIKU_PROVIDER_BASE_URL="https://haiku.example/api"  # double quotes',
                "HAIKU_PROVIDER_API_KEY='single quoted # not a comment'",
                "SONNET_PROVIDER_BASE_URL=https://sonnet.example/api # trailing comment",
                "SONNET_PROVIDER_API_KEY = spaced",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    result = run("routes", "--from-env")
    assert result.code == 0, result.err
    assert 'base_url = "https://haiku.example/api"' in result.out
    assert 'base_url = "https://sonnet.example/api"' in result.out
    assert "[providers.sonnet]" in result.out

