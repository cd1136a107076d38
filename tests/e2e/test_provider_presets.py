"""Presets end to end: a preset alone makes a provider work with Claude Code's requests.

- `preset = "zai"` with only a key and a test base URL: Claude Code's captured request is
  accepted by a fake that refuses what Z.AI is documented to refuse (a `role: "system"` turn,
  422 with a FastAPI body); without the preset, the same refusal reaches the client as a 400 in
  Anthropic's shape with Z.AI's wording, which is what Claude Code recovers from;
- `examples/local-ollama.toml` (no key): the fake sees no credential header at all, whatever
  the client sent; /health says so, with the preset and where each setting came from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from fakes import FakeUpstream
from fakes.config import profile_with_urls, routes_toml
from fakes.gateway import GatewayProcess, anthropic_client
from policy.captured import client_headers, encode, record

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CAPTURE = "cc_print_haiku_stream.json"
CLIENT_KEY = "sk-client-key-0123456789"
CLIENT_TOKEN = "sk-ant-oat01-client-token-0123456789"
ZAI_KEY = "zai-key-0123456789"
UpstreamFactory = Callable[..., FakeUpstream]
GatewayFactory = Callable[..., GatewayProcess]


def post_capture(gw: GatewayProcess) -> httpx.Response:
    """Claude Code's captured Haiku request (a streaming one, with a system turn), as it sent it."""
    capture = record(CAPTURE)
    headers = {**client_headers(CAPTURE), "x-api-key": CLIENT_KEY}
    return gw.request("POST", capture["path"], headers=headers, content=encode(capture["body"]))


def zai_as_documented(upstream_factory: UpstreamFactory) -> FakeUpstream:
    # docs/providers.md documents one refusal: a role "system" turn in messages, HTTP 422 with
    # a FastAPI body (strict_third_party). Betas and body fields are not checked: what the
    # preset drops there is assumed, not documented.
    return upstream_factory("zai", api_key=ZAI_KEY, strict_third_party=True, allowed_betas=None)


def zai_config(zai: FakeUpstream, **extra: object) -> str:
    return routes_toml(
        providers={"zai": {**extra, "base_url": zai.url, "key": {"env": "ZAI_API_KEY"}}},
        routes=[{"name": "all", "match": "*", "to": [{"provider": "zai", "model": "glm-4.7"}]}],
    )


def test_the_zai_preset_alone_makes_claude_codes_request_acceptable(
    upstream_factory: UpstreamFactory, gateway_factory: GatewayFactory
) -> None:
    zai = zai_as_documented(upstream_factory)
    gw = gateway_factory(zai_config(zai, preset="zai"), env={"ZAI_API_KEY": ZAI_KEY})

    response = post_capture(gw)

    assert response.status_code == 200, response.text
    assert "event: message_stop" in response.text
    received = zai.last
    assert received.outcome == "reply" and received.model == "glm-4.7"
    assert [m["role"] for m in received.json["messages"]] == ["user"]  # the system turn was merged
    assert received.credentials == [("x-api-key", ZAI_KEY)] and not zai.saw(CLIENT_KEY)


def test_without_the_preset_zais_422_reaches_the_client_as_a_400_with_its_wording(
    upstream_factory: UpstreamFactory, gateway_factory: GatewayFactory
) -> None:
    zai = zai_as_documented(upstream_factory)
    gw = gateway_factory(zai_config(zai), env={"ZAI_API_KEY": ZAI_KEY})

    response = post_capture(gw)

    assert zai.last.outcome == "rejected" and zai.last.stream  # the fake really refused, with its 422
    assert response.status_code == 400  # a stream request: the error comes before any event
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "messages.1.role: Input should be 'user' or 'assistant' (provider zai)",
        },
    }


def test_local_ollama_sends_no_credential_whatever_the_client_sent(
    upstream_factory: UpstreamFactory, gateway_factory: GatewayFactory
) -> None:
    ollama = upstream_factory("ollama")
    gw = gateway_factory(profile_with_urls(EXAMPLES / "local-ollama.toml", {"ollama": ollama.url}))
    client = anthropic_client(gw, api_key=CLIENT_KEY, default_headers={"authorization": f"Bearer {CLIENT_TOKEN}"})

    answer = client.messages.create(model="claude-opus-5-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    with client.messages.stream(model="claude-haiku-5-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]) as s:
        streamed = s.get_final_message()

    assert answer.content[0].type == "text" and answer.content[0].text.startswith("[ollama] model=qwen3-coder")
    assert streamed.content[0].type == "text" and streamed.content[0].text.startswith("[ollama] model=qwen3-coder")
    assert len(ollama.requests) == 2
    for received in ollama.requests:
        assert received.credentials == []
        assert "x-api-key" not in received.headers and "authorization" not in received.headers
    assert not ollama.saw(CLIENT_KEY) and not ollama.saw(CLIENT_TOKEN)


def test_health_shows_presets_origins_and_a_keyless_provider(
    upstream_factory: UpstreamFactory, gateway_factory: GatewayFactory
) -> None:
    ollama, zai = upstream_factory("ollama"), upstream_factory("zai")
    config = routes_toml(
        providers={
            "ollama": {"preset": "ollama", "base_url": ollama.url},
            "zai": {"preset": "zai", "base_url": zai.url, "key": {"env": "ZAI_API_KEY"}, "tool_choice": "keep"},
            "plain": {"base_url": zai.url, "key": {"env": "ZAI_API_KEY"}},
        },
        routes=[{"name": "all", "match": "*", "to": "ollama"}],
    )
    providers = gateway_factory(config, env={"ZAI_API_KEY": ZAI_KEY}).health()["providers"]

    assert providers["ollama"]["key"] == [
        {"source": "none", "available": True, "detail": "no credential is sent (preset ollama)"}
    ]
    assert providers["ollama"]["credential_available"] is True
    assert providers["ollama"]["preset"] == "ollama"
    assert providers["ollama"]["origins"] == {"base_url": "file", "key": "preset ollama", "count_tokens": "preset ollama"}
    assert providers["zai"]["preset"] == "zai"
    assert providers["zai"]["origins"] == {
        "base_url": "file", "key": "file", "betas": "preset zai", "system_turns": "preset zai", "tool_choice": "file",
        "count_tokens": "preset zai", "drop_fields": "preset zai",
    }
    assert providers["plain"]["preset"] is None
    assert providers["plain"]["origins"] == {"base_url": "file", "key": "file"}
