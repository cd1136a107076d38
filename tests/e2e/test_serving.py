"""The serving core end to end: the real gateway, fake upstreams on loopback, the official SDK.

One gateway serves the whole module, in this process (fakes.inprocess): its routes give every
key source, error and policy a model-name prefix of its own, and each test clears the fakes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from fakes import Error, FakeUpstream, InProcessGateway, Reply, Text, ToolUse, closed_port, thinking_reply
from fakes.claude_code import load
from fakes.config import routes_toml
from fakes.gateway import anthropic_client, write_claude_credentials
from fakes.inprocess import apply_environment, running_inprocess_gateway
from fakes.sockets import BlackHole

ZAI_KEY = "zai-secret-key-0123456789"
LITERAL_KEY = "sk-literal-value-key-abcdef"
OAUTH_TOKEN = "sk-ant-oat01-oauth-token-xyz-9876"
CLIENT_KEY = "sk-ant-client-key-000111222"
JSON_HEADERS = {"x-api-key": CLIENT_KEY, "content-type": "application/json"}


class Setup:
    def __init__(self, gateway: InProcessGateway, anthropic: FakeUpstream, zai: FakeUpstream, home: Path) -> None:
        self.gateway = gateway
        self.anthropic = anthropic
        self.zai = zai
        self.home = home

    def client(self, api_key: str | None = CLIENT_KEY, auth_token: str | None = None) -> anthropic.Anthropic:
        return anthropic_client(self.gateway, api_key=api_key, auth_token=auth_token)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("serving")
    home = root / "home"
    home.mkdir()
    write_claude_credentials(home, OAUTH_TOKEN, expires_at_ms=int((time.time() + 3600) * 1000))
    with FakeUpstream("anthropic") as up_anthropic, FakeUpstream("zai", api_key=ZAI_KEY) as up_zai, BlackHole() as hole:
        config = routes_toml(
            providers={
                "zai": {"base_url": up_zai.url, "key": {"env": "ZAI_API_KEY"}},
                "literal": {"base_url": up_anthropic.url, "key": {"value": LITERAL_KEY}},
                "oauth": {"base_url": up_anthropic.url, "key": {"oauth_file": True}},
                "chain": {"base_url": up_anthropic.url, "key": [{"client": True}, {"oauth_file": True}]},
                "expired": {"base_url": up_anthropic.url, "key": {"oauth_file": "~/expired.json"}},
                "missing": {"base_url": up_anthropic.url, "key": {"oauth_file": "~/nowhere.json"}},
                "noenv": {"base_url": up_zai.url, "key": {"env": "UNSET_KEY_VARIABLE"}},
                "rejecting": {"base_url": up_zai.url, "key": {"env": "ZAI_API_KEY"}, "count_tokens": "reject"},
                "dead": {"base_url": f"http://127.0.0.1:{closed_port()}", "key": {"env": "ZAI_API_KEY"}},
                "hole": {"base_url": hole.url, "key": {"env": "ZAI_API_KEY"}, "timeout_s": 1},
                "anthropic": {"base_url": up_anthropic.url, "key": {"client": True}},
            },
            routes=[
                {"name": "haiku", "match": ["claude-haiku-*", "glm-4.7"], "to": [{"provider": "zai", "model": "glm-4.7"}]},
                {"name": "literal", "match": "literal-*", "to": "literal"},
                {"name": "oauth", "match": "oauth-*", "to": "oauth"},
                {"name": "chain", "match": "chain-*", "to": "chain"},
                {"name": "expired", "match": "expired-*", "to": "expired"},
                {"name": "missing", "match": "missing-*", "to": "missing"},
                {"name": "noenv", "match": "noenv-*", "to": "noenv"},
                {"name": "rejecting", "match": "reject-*", "to": "rejecting"},
                {"name": "dead", "match": "dead-*", "to": "dead"},
                {"name": "hole", "match": "hole-*", "to": "hole"},
                {"name": "default", "match": ["claude-*", "passthrough-*"], "to": "anthropic"},
            ],
        )
        (home / "expired.json").write_text(
            json.dumps({"claudeAiOauth": {"accessToken": "sk-ant-oat01-expired-token", "expiresAt": 1_600_000_000_000}})
        )
        with running_inprocess_gateway(config, workdir=root / "gw", env={"ZAI_API_KEY": ZAI_KEY}, home=home) as gateway:
            yield Setup(gateway, up_anthropic, up_zai, home)


@pytest.fixture(autouse=True)
def _clear(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    # The gateway reads this process's environment, which each test begins without ZAI_API_KEY.
    apply_environment(monkeypatch, setup.gateway.env)
    setup.anthropic.clear()
    setup.zai.clear()


def _error(response: httpx.Response) -> tuple[int, str, str]:
    doc = response.json()
    assert doc["type"] == "error", doc
    return response.status_code, doc["error"]["type"], doc["error"]["message"]


# --- forwarding ---------------------------------------------------------------------------

def test_non_streaming_haiku_reaches_zai_as_glm_with_zai_key_only(setup: Setup) -> None:
    message = setup.client().messages.create(
        model="claude-haiku-5-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text.startswith("[zai] model=glm-4.7")
    seen = setup.zai.last
    assert seen.model == "glm-4.7"
    assert seen.credentials == [("x-api-key", ZAI_KEY)]
    assert not setup.zai.saw(CLIENT_KEY)
    assert setup.anthropic.requests == []


def test_streaming_text_reaches_client_with_client_credentials(setup: Setup) -> None:
    with setup.client().messages.stream(
        model="claude-sonnet-5-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        message = stream.get_final_message()
    assert message.content[0].text.startswith("[anthropic] model=claude-sonnet-5-5")
    assert message.stop_reason == "end_turn"
    assert setup.anthropic.last.credentials == [("x-api-key", CLIENT_KEY)]
    assert setup.anthropic.last.path == "/v1/messages"


def test_streaming_tool_use_arrives_whole(setup: Setup) -> None:
    setup.anthropic.enqueue(Reply(content=(Text("reading"), ToolUse("Read", {"file_path": "/tmp/a.txt"}))))
    with setup.client().messages.stream(
        model="claude-sonnet-5-5", max_tokens=32, messages=[{"role": "user", "content": "read it"}]
    ) as stream:
        message = stream.get_final_message()
    tool = message.content[1]
    assert tool.type == "tool_use" and tool.name == "Read" and tool.input == {"file_path": "/tmp/a.txt"}


def test_streaming_thinking_with_signature_delta_arrives_whole(setup: Setup) -> None:
    setup.anthropic.enqueue(thinking_reply("I should say hi.", text="hi"))
    with setup.client().messages.stream(
        model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}],
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        message = stream.get_final_message()
    thinking = message.content[0]
    assert thinking.type == "thinking" and thinking.thinking == "I should say hi."
    assert thinking.signature == setup.anthropic.sign("I should say hi.")


def test_query_string_is_kept_and_body_bytes_are_forwarded_unchanged(setup: Setup) -> None:
    body = b'{ "model" : "claude-sonnet-5-5",\n "max_tokens": 8, "messages": [{"role":"user","content":"\\u00e9t\\u00e9"}] }'
    response = setup.gateway.request(
        "POST", "/v1/messages?beta=true", content=body,
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"},
    )
    assert response.status_code == 200
    assert setup.anthropic.last.path == "/v1/messages?beta=true"
    assert setup.anthropic.last.body == body


def test_captured_claude_code_requests_split_between_upstreams(setup: Setup) -> None:
    with httpx.Client(timeout=30) as http:
        for name, upstream, model in [
            ("cc_print_haiku_stream", setup.zai, "glm-4.7"),
            ("cc_interactive_sonnet_stream", setup.anthropic, "claude-sonnet-5-5"),
            ("cc_print_sonnet_tool_result_turn2", setup.anthropic, "claude-sonnet-5-5"),
        ]:
            captured = load(name, api_key=CLIENT_KEY)
            response = captured.send(http, setup.gateway.url)
            assert response.status_code == 200, response.text
            assert "event: message_stop" in response.text
            seen = upstream.last
            assert seen.model == model
            assert seen.path == captured.path
            for header in ("anthropic-version", "anthropic-beta", "user-agent", "x-app", "x-claude-code-session-id"):
                assert seen.headers.get(header) == captured.header_dict[header], header
            if upstream is setup.anthropic:
                assert seen.body == captured.body  # nothing to change: the exact bytes
            else:
                assert seen.credentials == [("x-api-key", ZAI_KEY)]


def test_opus_capture_with_custom_model_goes_by_its_name(setup: Setup) -> None:
    captured = load("cc_print_custom_model_glm", api_key=CLIENT_KEY)
    with httpx.Client(timeout=30) as http:
        response = captured.send(http, setup.gateway.url)
    assert response.status_code == 200
    assert setup.zai.last.model == "glm-4.7"


# --- key sources --------------------------------------------------------------------------

def test_literal_value_key_is_sent_as_x_api_key(setup: Setup) -> None:
    setup.client().messages.create(model="literal-1", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert setup.anthropic.last.credentials == [("x-api-key", LITERAL_KEY)]


def test_oauth_file_token_goes_as_bearer_with_beta_appended_to_client_betas(setup: Setup) -> None:
    setup.client().messages.create(
        model="oauth-1", max_tokens=8, messages=[{"role": "user", "content": "x"}],
        extra_headers={"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"},
    )
    seen = setup.anthropic.last
    assert seen.credentials == [("Authorization", f"Bearer {OAUTH_TOKEN}")] or seen.credentials == [
        ("authorization", f"Bearer {OAUTH_TOKEN}")
    ]
    assert seen.betas == ["claude-code-20250219", "interleaved-thinking-2025-05-14", "oauth-2025-04-20"]
    assert not seen.contains(CLIENT_KEY)


def test_oauth_file_change_is_picked_up_without_restart(setup: Setup) -> None:
    new_token = "sk-ant-oat01-renewed-token-5555"
    write_claude_credentials(setup.home, new_token, expires_at_ms=int((time.time() + 3600) * 1000))
    try:
        setup.client().messages.create(model="oauth-1", max_tokens=8, messages=[{"role": "user", "content": "x"}])
        assert setup.anthropic.last.headers["authorization"] == f"Bearer {new_token}"
    finally:
        write_claude_credentials(setup.home, OAUTH_TOKEN, expires_at_ms=int((time.time() + 3600) * 1000))


def test_a_damaged_oauth_token_is_a_401_that_says_so_and_costs_the_provider_nothing(setup: Setup) -> None:
    # A control character could never go in a header: before, the request failed as "unreachable" (502).
    write_claude_credentials(setup.home, "sk-ant-oat01-damaged\r\nx-evil: 1", expires_at_ms=int((time.time() + 3600) * 1000))
    try:
        for _ in range(3):
            with pytest.raises(anthropic.AuthenticationError) as info:
                setup.client().messages.create(model="oauth-1", max_tokens=8, messages=[{"role": "user", "content": "x"}])
            message = info.value.body["error"]["message"]  # type: ignore[index]
            assert "is damaged: its access token holds a control character (run `claude` to log in again)" in message
            assert "sk-ant-oat01-damaged" not in message
        assert setup.anthropic.requests == []
        resilience = setup.gateway.health()["resilience"]
        assert "oauth" not in json.dumps(resilience)  # no cooldown, no circuit: not the provider's fault
    finally:
        write_claude_credentials(setup.home, OAUTH_TOKEN, expires_at_ms=int((time.time() + 3600) * 1000))


def test_chain_uses_client_credentials_first_then_the_oauth_file(setup: Setup) -> None:
    setup.client(api_key=None, auth_token="client-bearer-token-123").messages.create(
        model="chain-1", max_tokens=8, messages=[{"role": "user", "content": "x"}]
    )
    assert setup.anthropic.last.headers["authorization"] == "Bearer client-bearer-token-123"
    setup.client(api_key=None).messages.create(model="chain-1", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert setup.anthropic.last.headers["authorization"] == f"Bearer {OAUTH_TOKEN}"


def test_expired_oauth_token_is_a_401_telling_to_run_claude(setup: Setup) -> None:
    with pytest.raises(anthropic.AuthenticationError) as info:
        setup.client().messages.create(model="expired-1", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    message = info.value.body["error"]["message"]  # type: ignore[index]
    assert "provider 'expired'" in message and "expired at 2020-09-13" in message and "run `claude`" in message
    assert "sk-ant-oat01-expired-token" not in message
    assert setup.anthropic.requests == []


def test_missing_oauth_file_and_unset_env_name_the_source(setup: Setup) -> None:
    with pytest.raises(anthropic.AuthenticationError) as info:
        setup.client().messages.create(model="missing-1", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert f"no file at {setup.home}/nowhere.json" in info.value.body["error"]["message"]  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError) as info:
        setup.client().messages.create(model="noenv-1", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["message"] == (  # type: ignore[index]
        "no credential for provider 'noenv': env UNSET_KEY_VARIABLE: environment variable UNSET_KEY_VARIABLE is not set"
    )


def test_client_source_passes_whatever_the_client_sent(setup: Setup) -> None:
    setup.client(api_key=None, auth_token="bearer-from-client-42").messages.create(
        model="passthrough-1", max_tokens=8, messages=[{"role": "user", "content": "x"}]
    )
    assert setup.anthropic.last.headers["authorization"] == "Bearer bearer-from-client-42"
    assert "x-api-key" not in setup.anthropic.last.headers


def test_gateway_key_and_client_cookies_never_leave(setup: Setup) -> None:
    setup.client().messages.create(
        model="claude-haiku-5-5", max_tokens=8, messages=[{"role": "user", "content": "x"}],
        extra_headers={"x-gateway-key": "gw-key-should-stay-here", "cookie": "session=abc"},
    )
    seen = setup.zai.last
    assert "x-gateway-key" not in seen.headers and "cookie" not in seen.headers
    assert not seen.contains("gw-key-should-stay-here")


# --- count_tokens -------------------------------------------------------------------------

def test_count_tokens_forward_and_reject(setup: Setup) -> None:
    counted = setup.client().messages.count_tokens(
        model="claude-sonnet-5-5", messages=[{"role": "user", "content": "hello there"}]
    )
    assert counted.input_tokens > 0
    assert setup.anthropic.last.path_only == "/v1/messages/count_tokens"
    response = setup.gateway.request(
        "POST", "/v1/messages/count_tokens?beta=true", headers={"x-api-key": CLIENT_KEY},
        json={"model": "reject-1", "messages": [{"role": "user", "content": "x"}]},
    )
    status, kind, message = _error(response)
    assert status == 501
    assert "count_tokens is not offered for model 'reject-1' by provider 'rejecting'" in message
    assert setup.zai.requests == []


# --- upstream errors ----------------------------------------------------------------------

def test_upstream_error_passes_through_unchanged_with_retry_after(setup: Setup) -> None:
    setup.zai.enqueue(Error(429, retry_after=17, headers={"anthropic-ratelimit-requests-remaining": "0"}))
    response = setup.gateway.request(
        "POST", "/v1/messages", headers={"x-api-key": CLIENT_KEY},
        json={"model": "claude-haiku-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "17"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert response.headers["request-id"]
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_upstream_400_passes_through_to_the_sdk(setup: Setup) -> None:
    setup.anthropic.enqueue(Error(400, message="max_tokens: must be positive"))
    with pytest.raises(anthropic.BadRequestError) as info:
        setup.client().messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["message"] == "max_tokens: must be positive"  # type: ignore[index]


# --- gateway errors -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("body", "status", "kind", "fragment"),
    [
        (b"{not json", 400, "invalid_request_error", "request body is not valid JSON"),
        (b"[1, 2]", 400, "invalid_request_error", "request body must be a JSON object"),
        (b'{"max_tokens": 8}', 400, "invalid_request_error", "model: field required"),
        (b'{"model": "gpt-4o", "max_tokens": 8, "messages": []}', 400, "invalid_request_error",
         "model 'gpt-4o' matches no route (routes: haiku, literal, oauth, chain, expired, missing, noenv, rejecting, dead, hole, default)"),
        (b'{"model": "dead-1", "max_tokens": 8, "messages": []}', 502, "api_error",
         "provider 'dead' is unreachable: cannot connect to http://127.0.0.1:"),
        (b'{"model": "hole-1", "max_tokens": 8, "messages": []}', 504, "timeout_error",
         "provider 'hole' timed out: http://127.0.0.1:"),
    ],
)
def test_gateway_errors_are_anthropic_shaped(setup: Setup, body: bytes, status: int, kind: str, fragment: str) -> None:
    response = setup.gateway.request("POST", "/v1/messages", content=body, headers=JSON_HEADERS)
    assert _error(response)[:2] == (status, kind)
    assert fragment in _error(response)[2]
    assert "Traceback" not in response.text


def test_unknown_path_and_method_are_anthropic_shaped(setup: Setup) -> None:
    assert _error(setup.gateway.request("POST", "/v1/complete", json={}))[:2] == (404, "not_found_error")
    assert _error(setup.gateway.request("GET", "/v1/messages"))[:2] == (405, "invalid_request_error")


def test_body_over_the_limit_is_413(setup: Setup) -> None:
    big = b'{"model": "claude-sonnet-5-5", "pad": "' + b"x" * (33 * 1024 * 1024) + b'"}'
    response = setup.gateway.request("POST", "/v1/messages", content=big, headers=JSON_HEADERS)
    status, kind, message = _error(response)
    assert (status, kind) == (413, "request_too_large")
    assert "32 MiB" in message
    assert setup.anthropic.requests == []


# --- /health and /v1/models ---------------------------------------------------------------

def test_health_shows_source_providers_routes_and_tiers_without_secrets(setup: Setup) -> None:
    health = setup.gateway.health()
    assert health["status"] == "ok"
    config = health["config"]
    assert config["source"] == "file" and config["generation"] == 1
    assert config["path"] == str(setup.gateway.config_path) and len(config["sha256"]) == 64
    providers = health["providers"]
    assert providers["zai"]["key"] == [{"source": "env ZAI_API_KEY", "available": True}]
    assert providers["noenv"]["credential_available"] is False
    assert providers["anthropic"]["credential_available"] is None
    assert providers["literal"]["key"][0]["source"] == "value sk-...cdef"
    assert providers["rejecting"]["policy"] == {"count_tokens": "reject"}
    assert [r["name"] for r in health["routes"]][:2] == ["haiku", "literal"]
    assert health["tiers"]["haiku"] == {
        "model": "claude-haiku-5-5", "route": "haiku", "targets": [{"provider": "zai", "upstream_model": "glm-4.7"}]
    }
    assert health["tiers"]["opus"]["targets"] == [{"provider": "anthropic", "upstream_model": "claude-opus-5-5"}]
    text = json.dumps(health)
    for secret in (ZAI_KEY, LITERAL_KEY, OAUTH_TOKEN, "sk-ant-oat01-expired-token"):
        assert secret not in text


def test_models_lists_exact_names_and_rewrite_targets(setup: Setup) -> None:
    page = setup.client().models.list(limit=1000)
    ids = [m.id for m in page.data]
    assert ids == ["glm-4.7"]  # the only exact name; glm-4.7 is also haiku's rewrite target
    assert page.data[0].display_name == "glm-4.7 (zai)"
    raw = setup.gateway.request("GET", "/v1/models?limit=1000").json()
    assert raw["has_more"] is False and raw["first_id"] == raw["last_id"] == "glm-4.7"
    assert raw["data"][0]["type"] == "model" and raw["data"][0]["created_at"].endswith("Z")
    assert setup.gateway.request("GET", "/v1/models/claude-haiku-5-5").json()["display_name"] == (
        "claude-haiku-5-5 (zai: glm-4.7)"
    )
