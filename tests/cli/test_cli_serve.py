"""``gateway serve`` from the command line, up to the point where it would start listening.

Running the server is the end-to-end tests' business; here: the flags reach it, ``.env`` is read
before discovery, and an unusable config stops it with exit 1 and a located message.
"""

from __future__ import annotations

from pathlib import Path

from cli_support import Run

BROKEN = 'version = 1\n[providers.p]\nbase_url = "https://p.example"\nkey = { client = true }\n[[route]]\nmatch = "*"\nto = "q"\n'


def test_invalid_config_is_exit_1_with_file_line_path_message(run: Run, workdir: Path) -> None:
    (workdir / "broken.toml").write_text(BROKEN, encoding="utf-8")
    result = run("serve", "--config", "broken.toml", "--port", "8099")
    assert result.code == 1
    assert "broken.toml:7: route[0].to: unknown provider 'q'" in result.err
    assert result.err.rstrip().splitlines()[-1].startswith("Error: ")


def test_missing_config_is_exit_1(run: Run) -> None:
    result = run("serve", "--config", "nowhere.toml")
    assert result.code == 1
    assert "nowhere.toml" in result.err


def test_dotenv_is_read_before_discovery(run: Run, workdir: Path) -> None:
    (workdir / "broken.toml").write_text(BROKEN, encoding="utf-8")
    (workdir / ".env").write_text("GATEWAY_CONFIG=broken.toml\n", encoding="utf-8")
    result = run("serve", "--port", "8099")
    # Only the .env named broken.toml: failing on it proves serve read .env first.
    assert result.code == 1
    assert "broken.toml:7:" in result.err
