"""Wire policy end to end: the real gateway app (in process) between captured Claude Code requests and fakes.

- all-zai.toml in front of a strict Z.AI-like fake: every captured request succeeds;
- no policy in front of an Anthropic-role fake: every captured request arrives byte for byte;
- a conversation anthropic -> zai -> anthropic with thinking and tool use, through fakes that
  sign their own thinking blocks and reject everybody else's, passes without a signature error;
- betas, extra headers, count_tokens (estimate, via, 25 identical calls -> 1 upstream call).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from fakes import COUNT_TOKENS, MESSAGES, FakeUpstream, InProcessGateway, Reply, Text, Thinking, ToolUse
from fakes.config import profile_with_urls, routes_toml
from fakes.gateway import anthropic_client
from policy.captured import (
    ALL_BODIES,
    COUNT_TOKENS_REQUEST,
    MESSAGE_REQUESTS,
    client_headers,
    encode,
    record,
    request_body,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CLIENT_KEY = "sk-client-key-0123456789"
ZAI_KEY = "zai-key-0123456789"
UpstreamFactory = Callable[..., FakeUpstream]
InProcessFactory = Callable[..., InProcessGateway]


def post_captured(gw: InProcessGateway, name: str, body: bytes | None = None) -> tuple[httpx.Response, bytes]:
    """Send a captured request as Claude Code sent it (its path, headers and body) to the gateway."""
    capture = record(name)
    sent = body if body is not None else encode(capture["body"])
    headers = {**client_headers(name), "x-api-key": CLIENT_KEY}
    response = gw.request("POST", capture["path"], headers=headers, content=sent)
    return response, sent


def zai_fake(upstream_factory: UpstreamFactory) -> FakeUpstream:
    """Modelled on Z.AI: its own key, no betas at all, no Anthropic-only fields."""
    return upstream_factory(
        "zai",
        api_key=ZAI_KEY,
        strict_third_party=True,
        allowed_betas=(),
        rejected_fields=("context_management", "output_config"),
    )


# --- all-zai.toml against a strict provider ---------------------------------------------------------


@pytest.fixture
def all_zai(upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory) -> tuple[InProcessGateway, FakeUpstream]:
    zai = zai_fake(upstream_factory)
    config = profile_with_urls(EXAMPLES / "all-zai.toml", {"zai": zai.url})
    return inprocess_gateway(config, env={"ZAI_API_KEY": ZAI_KEY}), zai


@pytest.mark.parametrize("name", MESSAGE_REQUESTS)
def test_captured_requests_succeed_through_all_zai(all_zai: tuple[InProcessGateway, FakeUpstream], name: str) -> None:
    gw, zai = all_zai
    response, _ = post_captured(gw, name)
    assert response.status_code == 200, response.text
    assert "event: message_stop" in response.text
    received = zai.last
    assert received.outcome == "reply"
    assert received.query == "beta=true"
    assert received.credentials == [("x-api-key", ZAI_KEY)]
    assert not zai.saw(CLIENT_KEY)
    assert all(m["role"] != "system" for m in received.json["messages"])


def test_forced_tool_choice_is_rewritten_for_zai(all_zai: tuple[InProcessGateway, FakeUpstream]) -> None:
    gw, zai = all_zai
    doc = request_body("cc_print_sonnet_tool_result_turn2.json")
    doc["tool_choice"] = {"type": "tool", "name": "Read"}
    response, _ = post_captured(gw, "cc_print_sonnet_tool_result_turn2.json", encode(doc))
    assert response.status_code == 200, response.text
    assert zai.last.json["tool_choice"] == {"type": "auto"}


def test_the_strict_fake_rejects_what_the_policy_fixes(upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory) -> None:
    # The same profile without its policy lines: proof that the fake is strict enough to fail.
    zai = zai_fake(upstream_factory)
    text = profile_with_urls(EXAMPLES / "all-zai.toml", {"zai": zai.url})
    bare = "\n".join(
        line for line in text.splitlines()
        if not line.startswith(("preset", "system_turns", "tool_choice", "betas", "drop_fields"))
    )
    gw = inprocess_gateway(bare, env={"ZAI_API_KEY": ZAI_KEY})
    response, _ = post_captured(gw, "cc_print_haiku_stream.json")
    assert response.status_code == 400
    assert zai.last.outcome == "rejected"


def test_count_tokens_is_estimated_locally_for_zai(all_zai: tuple[InProcessGateway, FakeUpstream]) -> None:
    gw, zai = all_zai
    response, _ = post_captured(gw, COUNT_TOKENS_REQUEST)
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-estimate"] == "true"
    assert response.json()["input_tokens"] > 346
    assert zai.requests_to(COUNT_TOKENS) == []


# --- no policy: the client's bytes -------------------------------------------------------------------


def test_captured_requests_arrive_byte_identical_without_policy(
    upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory
) -> None:
    anthropic = upstream_factory("anthropic", api_key=CLIENT_KEY)
    config = routes_toml(
        providers={"anthropic": {"base_url": anthropic.url, "key": {"client": True}}},
        routes=[{"name": "all", "match": "*", "to": "anthropic"}],
    )
    gw = inprocess_gateway(config)
    for name in ALL_BODIES:
        response, sent = post_captured(gw, name)
        assert response.status_code == 200, (name, response.text)
        received = anthropic.last
        assert received.body == sent, name
        assert received.path == record(name)["path"]
        assert received.headers["anthropic-beta"] == record(name)["headers"]["anthropic-beta"]
        assert received.headers["x-claude-code-session-id"] == record(name)["headers"]["x-claude-code-session-id"]


# --- a conversation across providers -----------------------------------------------------------------

READ_TOOL: Any = {
    "name": "Read",
    "description": "Read a file",
    "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]},
}
THINKING_ON: Any = {"type": "enabled", "budget_tokens": 2048}


def as_param(block: Any) -> dict[str, Any]:
    """A response content block as it goes back in the next request's history."""
    if block.type == "thinking":
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if block.type == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {"type": "text", "text": block.text}


def tool_result(tool_use: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "file contents"}]}


@pytest.fixture
def mixed(upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory) -> tuple[InProcessGateway, FakeUpstream, FakeUpstream]:
    anthropic = upstream_factory("anthropic", api_key=CLIENT_KEY, strict_signatures=True)
    zai = zai_fake(upstream_factory)
    config = profile_with_urls(EXAMPLES / "mixed.toml", {"anthropic": anthropic.url, "zai": zai.url})
    return inprocess_gateway(config, env={"ZAI_API_KEY": ZAI_KEY}), anthropic, zai


def test_conversation_anthropic_zai_anthropic_with_thinking_and_tools(
    mixed: tuple[InProcessGateway, FakeUpstream, FakeUpstream],
) -> None:
    gw, anthropic, zai = mixed
    client = anthropic_client(gw, api_key=CLIENT_KEY)
    messages: list[Any] = [{"role": "user", "content": "Read a.py and b.py"}]

    # Turn 1, Sonnet on Anthropic, streamed: signed thinking, then a tool call.
    anthropic.enqueue(Reply(content=(Thinking("Anthropic thinks: read a.py."), ToolUse("Read", {"file_path": "a.py"}))))
    with client.messages.stream(
        model="claude-sonnet-5-5", max_tokens=4096, thinking=THINKING_ON, tools=[READ_TOOL], messages=messages
    ) as stream:
        first = [as_param(b) for b in stream.get_final_message().content]
    assert first[0]["type"] == "thinking" and first[1]["type"] == "tool_use"
    messages += [{"role": "assistant", "content": first}, tool_result(first[1])]

    # Turn 2, Haiku on Z.AI, not streamed: Anthropic's thinking must not reach Z.AI, and the
    # tool-use turn left without thinking means the thinking parameter goes too.
    zai.enqueue(Reply(content=(Thinking("Z.AI thinks: now b.py."), ToolUse("Read", {"file_path": "b.py"}))))
    second_message = client.messages.create(
        model="claude-haiku-5-5", max_tokens=4096, thinking=THINKING_ON, tools=[READ_TOOL], messages=messages
    )
    second = [as_param(b) for b in second_message.content]
    sent_to_zai = zai.last.json
    assert sent_to_zai["model"] == "glm-4.7"
    assert [b["type"] for b in sent_to_zai["messages"][1]["content"]] == ["tool_use"]
    assert "thinking" not in sent_to_zai
    messages += [{"role": "assistant", "content": second}, tool_result(second[1])]

    # Turn 3, back to Sonnet on Anthropic, streamed: its own block goes back, Z.AI's does not.
    anthropic.enqueue(Reply(content=(Thinking("Both read."), Text("Done."))))
    with client.messages.stream(
        model="claude-sonnet-5-5", max_tokens=4096, thinking=THINKING_ON, tools=[READ_TOOL], messages=messages
    ) as stream:
        final = stream.get_final_message()
    assert as_param(final.content[-1]) == {"type": "text", "text": "Done."}
    sent_to_anthropic = anthropic.last.json
    assert sent_to_anthropic["messages"][1]["content"][0] == first[0]  # intact, signature and all
    assert [b["type"] for b in sent_to_anthropic["messages"][3]["content"]] == ["tool_use"]
    assert "thinking" not in sent_to_anthropic  # the last tool-use turn lost Z.AI's thinking
    assert [r.outcome for r in anthropic.requests + zai.requests] == ["reply"] * 3


def test_without_the_gateway_the_fakes_reject_foreign_signatures(
    mixed: tuple[InProcessGateway, FakeUpstream, FakeUpstream],
) -> None:
    # Proof that the conversation test can fail: Z.AI's fake refuses Anthropic's signature.
    _, anthropic, zai = mixed
    history: list[Any] = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "t", "signature": anthropic.sign("t")},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}]},
    ]
    direct = anthropic_client(SimpleNamespace(url=zai.url), api_key=ZAI_KEY)
    with pytest.raises(Exception, match="Invalid `signature`"):
        direct.messages.create(model="glm-4.7", max_tokens=10, thinking=THINKING_ON, tools=[READ_TOOL], messages=history)


# --- betas and extra headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("betas", "expected"),
    [
        (None, "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,token-counting-2024-11-01"),
        ("drop", None),
        (["interleaved-thinking-2025-05-14", "not-sent-by-the-client"], "interleaved-thinking-2025-05-14"),
    ],
)
def test_beta_policy_end_to_end(
    upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory, betas: Any, expected: str | None
) -> None:
    upstream = upstream_factory("anthropic", api_key=CLIENT_KEY)
    provider: dict[str, Any] = {"base_url": upstream.url, "key": {"client": True}}
    if betas is not None:
        provider["betas"] = betas
    gw = inprocess_gateway(routes_toml(providers={"anthropic": provider}, routes=[{"name": "all", "match": "*", "to": "anthropic"}]))
    response, _ = post_captured(gw, COUNT_TOKENS_REQUEST)
    assert response.status_code == 200, response.text
    assert upstream.last.headers.get("anthropic-beta") == expected


def test_extra_headers_go_upstream_beside_the_providers_own_credential(
    upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory
) -> None:
    zai = upstream_factory("zai", api_key=ZAI_KEY)
    config = routes_toml(
        providers={"zai": {"base_url": zai.url, "key": {"env": "ZAI_API_KEY"}, "headers": {"x-extra": "value", "X-Team": "core"}}},
        routes=[{"name": "all", "match": "*", "to": "zai"}],
    )
    gw = inprocess_gateway(config, env={"ZAI_API_KEY": ZAI_KEY})
    response, _ = post_captured(gw, "cc_print_haiku_stream.json")
    assert response.status_code == 200, response.text
    received = zai.last
    assert received.headers["x-extra"] == "value" and received.headers["x-team"] == "core"
    assert received.credentials == [("x-api-key", ZAI_KEY)]
    assert not zai.saw(CLIENT_KEY)


@pytest.mark.parametrize("header", ["x-api-key", "Authorization"])
def test_extra_headers_cannot_carry_credentials(header: str) -> None:
    from rules.errors import ConfigError
    from rules.loader import load_bytes

    config = routes_toml(
        providers={"zai": {"base_url": "https://api.z.ai/api/anthropic", "key": {"env": "ZAI_API_KEY"}, "headers": {header: "stolen"}}},
        routes=[{"name": "all", "match": "*", "to": "zai"}],
    )
    with pytest.raises(ConfigError) as caught:
        load_bytes(config.encode(), file="routes.toml", env={})
    assert "credentials come from `key`" in caught.value.render()
    assert "stolen" not in caught.value.render()


# --- count_tokens --------------------------------------------------------------------------------------


def test_25_identical_concurrent_count_tokens_calls_make_one_upstream_call(
    upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory
) -> None:
    anthropic = upstream_factory("anthropic", api_key=CLIENT_KEY)
    # Slow enough that the calls overlap: they share the one in flight, not only the cache.
    anthropic.set_default(Reply(head_delay_s=0.5, input_tokens=4242), path=COUNT_TOKENS)
    config = routes_toml(
        providers={"anthropic": {"base_url": anthropic.url, "key": {"client": True}}},
        routes=[{"name": "all", "match": "*", "to": "anthropic"}],
    )
    gw = inprocess_gateway(config)
    with ThreadPoolExecutor(max_workers=25) as pool:
        responses = list(pool.map(lambda _: post_captured(gw, COUNT_TOKENS_REQUEST)[0], range(25)))
    assert [r.status_code for r in responses] == [200] * 25
    assert {r.json()["input_tokens"] for r in responses} == {4242}
    assert len(anthropic.requests_to(COUNT_TOKENS)) == 1
    # Another credential is another user: never served from the first one's answer.
    other = {**client_headers(COUNT_TOKENS_REQUEST), "x-api-key": "sk-other"}
    gw.request("POST", record(COUNT_TOKENS_REQUEST)["path"], headers=other, content=encode(request_body(COUNT_TOKENS_REQUEST)))
    assert len(anthropic.requests_to(COUNT_TOKENS)) == 2


def test_count_tokens_via_another_provider_uses_its_credentials(
    upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory
) -> None:
    anthropic = upstream_factory("anthropic", api_key=CLIENT_KEY)
    anthropic.set_default(Reply(input_tokens=777), path=COUNT_TOKENS)
    zai = upstream_factory("zai", api_key=ZAI_KEY, count_tokens=False)
    config = routes_toml(
        providers={
            "anthropic": {"base_url": anthropic.url, "key": {"client": True}},
            "zai": {"base_url": zai.url, "key": {"env": "ZAI_API_KEY"}, "count_tokens": {"via": "anthropic"}},
        },
        routes=[{"name": "sonnet", "match": "*sonnet*", "to": [{"provider": "zai", "model": "glm-4.7"}]}],
    )
    gw = inprocess_gateway(config, env={"ZAI_API_KEY": ZAI_KEY})
    response, sent = post_captured(gw, COUNT_TOKENS_REQUEST)
    assert response.status_code == 200, response.text
    assert response.json() == {"input_tokens": 777}
    received = anthropic.last
    assert received.path_only == COUNT_TOKENS
    assert received.credentials == [("x-api-key", CLIENT_KEY)]
    assert received.body == sent  # the client's model name, the client's bytes
    assert zai.requests == []


def test_messages_still_go_to_the_target_when_count_tokens_goes_elsewhere(
    upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory
) -> None:
    zai = upstream_factory("zai", api_key=ZAI_KEY)
    config = routes_toml(
        providers={"zai": {"base_url": zai.url, "key": {"env": "ZAI_API_KEY"}, "count_tokens": "estimate"}},
        routes=[{"name": "all", "match": "*", "to": [{"provider": "zai", "model": "glm-4.7"}]}],
    )
    gw = inprocess_gateway(config, env={"ZAI_API_KEY": ZAI_KEY})
    response, _ = post_captured(gw, "cc_print_haiku_stream.json")
    assert response.status_code == 200
    assert [r.path_only for r in zai.requests] == [MESSAGES]
    assert json.loads(zai.last.body)["model"] == "glm-4.7"
