"""``gateway explain MODEL``: the route, each target, key availability, redaction."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from cli_support import EXAMPLES, Run

SECRET = "sk-literal-secret-key-0123456789wxyz"
HEADER_SECRET = "header-secret-value-0123456789"

LITERAL = f"""\
version = 1

[providers.direct]
base_url = "https://llm.example.com/"
key = {{ value = "{SECRET}" }}
headers = {{ "x-tenant" = "{HEADER_SECRET}" }}
thinking = "strip"

[[route]]
name = "everything"
match = "*"
to = [{{ provider = "direct", model = "big-model" }}]
"""

OAUTH = """\
version = 1

[providers.anthropic]
base_url = "https://api.anthropic.com"
key = { oauth_file = true }

[[route]]
name = "default"
match = "*"
to = "anthropic"
"""


def use_example(workdir: Path, name: str) -> None:
    shutil.copy(EXAMPLES / f"{name}.toml", workdir / "routes.toml")


def write_login(directory: Path, *, expires_in_s: float) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ".credentials.json"
    expires_at_ms = int((time.time() + expires_in_s) * 1000)
    login = {"claudeAiOauth": {"accessToken": "sk-ant-oat01-test-token-0000", "expiresAt": expires_at_ms}}
    path.write_text(json.dumps(login), encoding="utf-8")
    return path


def test_haiku_on_mixed_goes_to_zai_as_glm(run: Run, workdir: Path) -> None:
    use_example(workdir, "mixed")
    result = run("explain", "claude-haiku-5-5", env={"ZAI_API_KEY": "zai-test-key-0000000000"})
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "model:  claude-haiku-5-5"
    assert lines[1].startswith("config: ") and "routes.toml" in lines[1]
    assert lines[2].startswith("route:  haiku ") and "'*haiku*'" in lines[2]
    assert "target 1: provider zai" in lines
    # The preset is the target's heading; every setting says where it came from.
    assert lines[lines.index("target 1: provider zai") + 1] == "  preset:         zai (Z.AI (GLM), global)"
    assert "  upstream URL:   https://api.z.ai/api/anthropic/v1/messages  # from the file" in lines
    assert "  upstream model: glm-4.7 (rewritten)" in lines
    assert "  key:            env ZAI_API_KEY: available now  # from the file" in lines
    # The wire policy shows the non-default settings only, as the config spells them.
    assert '                  system_turns = "merge"  # from preset zai' in lines
    assert 'betas = "drop"  # from preset zai' in result.out
    assert 'thinking = ' not in result.out and "preset = " not in result.out
    assert "zai-test-key" not in result.out


def test_env_key_not_set_is_reported(run: Run, workdir: Path) -> None:
    use_example(workdir, "mixed")
    result = run("explain", "claude-haiku-5-5")
    assert result.code == 0
    assert "env ZAI_API_KEY: NOT available" in result.out
    assert "ZAI_API_KEY is not set" in result.out


def test_sonnet_on_mixed_goes_to_anthropic_with_client_then_oauth(run: Run, workdir: Path) -> None:
    use_example(workdir, "mixed")
    result = run("explain", "claude-sonnet-5-5")
    assert result.code == 0
    assert "target 1: provider anthropic" in result.out
    assert "upstream model: claude-sonnet-5-5 (unchanged)" in result.out
    assert "1. client" in result.out and "2. oauth_file" in result.out
    # The anthropic preset sets no wire policy: nothing is rewritten on the way.
    assert "  preset:         anthropic (Anthropic)" in result.out.splitlines()
    policy = result.out.split("wire policy:", 1)[1].split()
    assert policy == ["defaults", "(request", "forwarded", "as", "sent)"]


def test_fallback_target_is_labelled(run: Run, workdir: Path) -> None:
    use_example(workdir, "fallback")
    result = run("explain", "claude-opus-5-5")
    assert result.code == 0
    assert "target 1: provider anthropic" in result.out
    assert any(
        line.startswith("target 2 (fallback, after 429, 500, 502, 503, 504, 529") and line.endswith("provider zai")
        for line in result.out.splitlines()
    ), result.out


def test_config_option_and_no_match(run: Run, workdir: Path) -> None:
    config = workdir / "only-haiku.toml"
    config.write_text(
        'version = 1\n[providers.p]\nbase_url = "https://p.example"\nkey = { client = true }\n'
        '[[route]]\nname = "haiku"\nmatch = "*haiku*"\nto = "p"\n',
        encoding="utf-8",
    )
    assert run("explain", "claude-haiku-5-5", "--config", str(config)).code == 0
    result = run("explain", "claude-opus-5-5", "--config", str(config))
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("Error: no route matches model 'claude-opus-5-5'")
    assert "routes: haiku" in result.err


def test_literal_key_and_header_values_never_printed(run: Run, workdir: Path) -> None:
    (workdir / "routes.toml").write_text(LITERAL, encoding="utf-8")
    result = run("explain", "anything")
    assert result.code == 0, result.err
    assert SECRET not in result.out + result.err
    assert HEADER_SECRET not in result.out + result.err
    assert "value sk-...wxyz: available now" in result.out
    assert '"x-tenant" = ' in result.out
    # No preset: no preset line, and every setting comes from the file.
    assert 'thinking = "strip"  # from the file' in result.out and "  preset: " not in result.out
    assert "upstream URL:   https://llm.example.com/v1/messages  # from the file" in result.out


def test_keyless_preset_says_no_credential_is_sent(run: Run, workdir: Path) -> None:
    use_example(workdir, "local-ollama")
    result = run("explain", "claude-opus-5-5")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[lines.index("target 1: provider ollama") + 1:][:5] == [
        "  preset:         ollama (Ollama (local))",
        "  upstream URL:   http://localhost:11434/v1/messages  # from the file",
        "  upstream model: qwen3-coder (rewritten)",
        "  key:            none: no credential is sent, nor the client's own  # from preset ollama",
        '  wire policy:    count_tokens = "estimate"  # from preset ollama',
    ]


def test_oauth_file_default_location_available(run: Run, workdir: Path, home: Path) -> None:
    (workdir / "routes.toml").write_text(OAUTH, encoding="utf-8")
    path = write_login(home / ".claude", expires_in_s=3600)
    result = run("explain", "claude-opus-5-5")
    assert result.code == 0
    assert f"-> {path}: available now" in result.out
    assert "test-token" not in result.out


def test_oauth_file_in_claude_config_dir_expired(run: Run, workdir: Path, tmp_path: Path) -> None:
    (workdir / "routes.toml").write_text(OAUTH, encoding="utf-8")
    config_dir = tmp_path / "claude-config"
    path = write_login(config_dir, expires_in_s=-3600)
    result = run("explain", "claude-opus-5-5", env={"CLAUDE_CONFIG_DIR": str(config_dir)})
    assert result.code == 0
    assert f"-> {path}: NOT available" in result.out
    assert "expired" in result.out and "run `claude`" in result.out


def test_oauth_file_missing(run: Run, workdir: Path, home: Path) -> None:
    (workdir / "routes.toml").write_text(OAUTH, encoding="utf-8")
    result = run("explain", "claude-opus-5-5")
    assert result.code == 0
    assert f"NOT available: no file at {home / '.claude' / '.credentials.json'}" in result.out


def test_embedded_default_without_any_config(run: Run) -> None:
    result = run("explain", "claude-haiku-5-5")
    assert result.code == 0
    assert "config: embedded default" in result.out
    assert "upstream URL:   https://api.anthropic.com/v1/messages" in result.out


def test_invalid_config_exits_1_with_located_problem(run: Run, workdir: Path) -> None:
    (workdir / "routes.toml").write_text('version = 1\n[providers.p]\nbase_url = "nope"\n', encoding="utf-8")
    result = run("explain", "claude-haiku-5-5")
    assert result.code == 1
    first = result.err.splitlines()[0]
    assert first.startswith(str(workdir / "routes.toml") + ":1: "), first
    assert result.err.splitlines()[-1].startswith("Error: ")


def test_missing_config_option_exits_1(run: Run) -> None:
    result = run("explain", "claude-haiku-5-5", "--config", "absent.toml")
    assert result.code == 1
    assert "absent.toml" in result.err and "Error: " in result.err


def test_quota_saver_lists_every_route_a_name_can_take(run: Run, workdir: Path) -> None:
    use_example(workdir, "quota-saver")
    result = run("explain", "claude-sonnet-5-5", env={"ZAI_API_KEY": "zai-test-key-0000000000"})
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[2].startswith("routes: by what Claude Code says about the request")
    assert lines[3:6] == [
        "  1. server-tools (route[1]) when server_tools true",
        "  2. helpers (route[2]) when request_class subagent or compaction or auxiliary",
        "  3. main (route[3]), always",
    ]
    assert lines[6].startswith("  a request without hint headers (request_class unknown) gets main; ")
    assert lines[7] == "route:  main (route[3]), matched by '*'"
    spill = [line for line in lines if line.startswith("  spill_at:")]
    assert spill == ["  spill_at:       steps aside while its credential's 5h window is at 95% or more, or its 7d "
                     "window is at 85% or more (the next target serves until the window resets)"]


def test_request_class_and_agent_type_pick_the_route(run: Run, workdir: Path) -> None:
    use_example(workdir, "quota-saver")
    result = run("explain", "claude-sonnet-5-5", "--request-class", "subagent", "--agent-type", "general-purpose")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[2] == "facts:  request_class subagent, agent_type general-purpose, server_tools false"
    assert lines[3] == "route:  helpers (route[2]), matched by '*', when request_class subagent or compaction or auxiliary"
    assert "target 1: provider zai" in lines and "  upstream model: glm-4.7 (rewritten)" in lines
    searching = run("explain", "claude-sonnet-5-5", "--request-class", "subagent", "--server-tools")
    assert "route:  server-tools (route[1]), matched by '*', when server_tools true" in searching.out
    main = run("explain", "claude-sonnet-5-5", "--request-class", "main")
    assert "route:  main (route[3])" in main.out and "spill_at:" in main.out
    wrong = run("explain", "claude-sonnet-5-5", "--request-class", "helper")
    assert wrong.code == 2 and "invalid choice: 'helper'" in wrong.err


def test_facts_no_route_holds_for_is_an_error(run: Run, workdir: Path) -> None:
    (workdir / "routes.toml").write_text(
        'version = 1\n[providers.p]\nbase_url = "https://p.example"\nkey = { client = true }\n'
        '[[route]]\nname = "helpers"\nmatch = "*"\nwhen = { request_class = "subagent" }\nto = "p"\n',
        encoding="utf-8",
    )
    listing = run("explain", "claude-opus-5-5")
    assert listing.code == 0
    assert "a request without hint headers (request_class unknown) matches none of them: 404" in listing.out
    result = run("explain", "claude-opus-5-5", "--request-class", "main")
    assert result.code == 1
    assert "matches routes helpers" in result.err and "none holds for request_class main" in result.err
