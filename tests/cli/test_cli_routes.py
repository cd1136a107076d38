"""``gateway routes --from-env``: the legacy environment rendered as a routes.toml that validates."""

from __future__ import annotations

from pathlib import Path

from cli_support import Run

HAIKU_ENV = {
    "HAIKU_PROVIDER_BASE_URL": "https://api.z.ai/api/anthropic",
    "HAIKU_PROVIDER_API_KEY": "zai-secret-key-0123456789",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.7",
}


def test_rendered_legacy_env_validates_and_routes_haiku(run: Run, workdir: Path) -> None:
    result = run("routes", "--from-env", env=HAIKU_ENV)
    assert result.code == 0, result.err
    assert result.out.startswith("#")
    assert "[providers.haiku]" in result.out
    # Z.AI's URL: the zai preset, with the x-api-key the original proxy sent.
    assert '[providers.haiku]\npreset = "zai"\nkey = { env = "HAIKU_PROVIDER_API_KEY" }\nauth = "x-api-key"\n' in result.out
    # The key is referenced by name, never copied into the file.
    assert "zai-secret-key" not in result.out
    (workdir / "legacy.toml").write_text(result.out, encoding="utf-8")

    checked = run("validate", "--strict", "legacy.toml", env=HAIKU_ENV)
    assert checked.code == 0, checked.out + checked.err

    for model in ("claude-haiku-5-5", "glm-4.7"):
        explained = run("explain", model, "--config", "legacy.toml", env=HAIKU_ENV)
        assert explained.code == 0, explained.err
        assert "target 1: provider haiku" in explained.out.splitlines()
        assert "env HAIKU_PROVIDER_API_KEY: available now" in explained.out
        assert "  upstream URL:   https://api.z.ai/api/anthropic/v1/messages" in explained.out
        assert 'system_turns = "merge"  # from preset zai' in explained.out
        assert 'auth = "x-api-key"  # from the file' in explained.out
        assert "  preset:         zai (Z.AI (GLM), global)" in explained.out.splitlines()

    sonnet = run("explain", "claude-sonnet-5-5", "--config", "legacy.toml", env=HAIKU_ENV)
    assert "target 1: provider anthropic" in sonnet.out.splitlines()


def test_no_legacy_variables_is_exit_1(run: Run) -> None:
    result = run("routes", "--from-env")
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("Error: no legacy variables are set")
    assert "HAIKU_PROVIDER_BASE_URL" in result.err


def test_url_without_key_is_exit_1_naming_the_variable(run: Run) -> None:
    result = run("routes", "--from-env", env={"SONNET_PROVIDER_BASE_URL": "https://api.z.ai/api/anthropic"})
    assert result.code == 1
    assert result.out == ""
    assert "SONNET_PROVIDER_API_KEY" in result.err
    assert result.err.splitlines()[-1].startswith("Error: ")


def test_routes_without_from_env_is_a_usage_error(run: Run) -> None:
    result = run("routes", env=HAIKU_ENV)
    assert result.code == 2
    assert "--from-env" in result.err.splitlines()[-1]
