"""gateway.cli.preview: each target's request as it would leave, as a diff, with secrets redacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli.preview import _header_lines, load_request, preview_lines
from policy.captured import CAPTURED, request_bytes
from rules.loader import load_bytes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZAI_KEY = "zai-secret-key-0123456789"
ENV = {"ZAI_API_KEY": ZAI_KEY}


def preview(profile: str, model: str, request: bytes) -> str:
    ruleset = load_bytes((EXAMPLES / profile).read_bytes(), file=profile, env=ENV)
    route = ruleset.resolve(model)
    assert route is not None
    return "\n".join(preview_lines(route, load_request(request, model), ENV))


def test_zai_target_shows_what_its_policy_changed() -> None:
    text = preview("fallback.toml", "claude-sonnet-5-5", (CAPTURED / "cc_print_sonnet_tool_result_turn2.json").read_bytes())
    first, second = text.split("request to target 2")
    assert "provider anthropic" in first and "body: the client's 17858 bytes, unchanged" in first
    assert "POST https://api.z.ai/api/anthropic/v1/messages?beta=true" in second
    assert "body: rewritten by drop_fields, system_turns, model" in second
    assert '-  "model": "claude-sonnet-5-5",' in second and '+  "model": "glm-4.7",' in second
    assert '-      "role": "system",' in second
    assert '-  "context_management": {' in second
    assert "\n    -anthropic-beta: claude-code-20250219" in second  # betas = "drop"


def test_secrets_are_redacted() -> None:
    capture = (CAPTURED / "cc_print_haiku_stream.json").read_text().replace("<REDACTED test credential>", "sk-ant-client-secret-9876")
    text = preview("all-zai.toml", "claude-haiku-5-5", capture.encode())
    assert ZAI_KEY not in text and "sk-ant-client-secret-9876" not in text
    assert "+x-api-key: zai...6789" in text
    assert "-x-api-key: sk-...9876" in text


def test_every_credential_like_header_is_redacted() -> None:
    capture = json.loads((CAPTURED / "cc_print_haiku_stream.json").read_text())
    secrets = {
        "Proxy-Authorization": "Basic dXNlcjpodW50ZXIycGFzc3dvcmQ=",
        "X-Auth-Token": "plain-words-but-a-token-value",
        "X-Goog-Api-Key": "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI",
        "X-Custom": "sk-ant-api03-looks-like-a-key-0123456789",
        "Cookie": "session=abcdef",
    }
    capture["headers"].update(secrets)
    text = preview("all-zai.toml", "claude-haiku-5-5", json.dumps(capture).encode())
    for value in secrets.values():
        assert value not in text
    assert "-proxy-authorization: Bas...cmQ=" in text and "-cookie: ***" in text  # what the diff shows
    # Headers that go through unchanged are shown too when near a change: every line is redacted.
    lines = _header_lines([(k, v) for k, v in secrets.items()] + [("x-app", "cli")], set())
    assert "x-app: cli" in lines and not any(v in "\n".join(lines) for v in secrets.values())


def test_a_bare_body_gets_default_path_and_headers_and_the_model_asked_for() -> None:
    text = preview("all-zai.toml", "claude-haiku-5-5", request_bytes("cc_interactive_count_tokens.json"))
    assert "model glm-4.5-air" in text
    assert "POST https://api.z.ai/api/anthropic/v1/messages?beta=true" in text
    assert '+  "model": "glm-4.5-air",' in text


def test_count_tokens_estimate_sends_nothing() -> None:
    text = preview("all-zai.toml", "claude-haiku-5-5", (CAPTURED / "cc_interactive_count_tokens.json").read_bytes())
    assert 'count_tokens = "estimate": answered by the gateway, nothing is sent' in text


def test_missing_key_is_said_not_fatal() -> None:
    ruleset = load_bytes((EXAMPLES / "all-zai.toml").read_bytes(), file="all-zai.toml", env={})
    route = ruleset.resolve("claude-haiku-5-5")
    assert route is not None
    text = "\n".join(preview_lines(route, load_request(request_bytes("cc_print_haiku_stream.json"), "claude-haiku-5-5"), {}))
    assert "environment variable ZAI_API_KEY is not set" in text and "401" in text


@pytest.mark.parametrize(("data", "words"), [(b"{", "not JSON"), (b"[1]", "JSON object"), (b'{"model": "m"}', "messages")])
def test_unusable_files_say_why(data: bytes, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        load_request(data, "m")


def test_explain_request_on_the_command_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    monkeypatch.chdir(tmp_path)  # no ./.env, no ./routes.toml
    monkeypatch.setenv("ZAI_API_KEY", ZAI_KEY)
    capture = str(CAPTURED / "cc_print_haiku_stream.json")
    assert main(["explain", "claude-haiku-5-5", "--config", str(EXAMPLES / "mixed.toml"), "--request", capture]) == 0
    out = capsys.readouterr().out
    assert "route:  haiku" in out and "request to target 1: provider zai, model glm-4.7" in out
    assert "body: rewritten by drop_fields, system_turns, model" in out
    assert ZAI_KEY not in out
    assert main(["explain", "claude-haiku-5-5", "--config", str(EXAMPLES / "mixed.toml"), "--request", str(tmp_path / "none.json")]) == 1
    assert "cannot read the request file" in capsys.readouterr().err
