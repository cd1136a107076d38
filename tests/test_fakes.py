"""The test doubles themselves, against the fakes directly (no gateway)."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import anthropic
import httpx
import pytest
import tomllib
from aiohttp import web
from anthropic.types import MessageParam, TextBlock, ToolUseBlock
from anthropic.types.parsed_message import ParsedTextBlock

import fakes
from fakes import (
    BlackHole,
    Choose,
    Drop,
    Error,
    FakeUpstream,
    Handler,
    Hang,
    Raw,
    RecordedRequest,
    RedactedThinking,
    Reply,
    Text,
    Thinking,
    claude_code,
    closed_port,
    parse_sse,
    thinking_reply,
    tool_use_reply,
)
from fakes.config import profile_with_urls, routes_toml
from fakes.gateway import (
    GatewayStartError,
    anthropic_client,
    ssl_context,
    write_claude_credentials,
)

UpstreamFactory = Any
GatewayFactory = Any
InProcessFactory = Any

STANDIN = [sys.executable, str(Path(fakes.__file__).with_name("standin_gateway.py"))]
USER_HI: list[MessageParam] = [{"role": "user", "content": "hi"}]


def text_of(block: object) -> str:
    """The text of a text block (AssertionError for any other block)."""
    assert isinstance(block, (TextBlock, ParsedTextBlock)), block
    return block.text


def http(timeout: float = 10.0) -> httpx.Client:
    return httpx.Client(timeout=timeout, verify=ssl_context())


def post(upstream: FakeUpstream, body: dict[str, Any], path: str = "/v1/messages", **headers: str) -> httpx.Response:
    with http() as client:
        return client.post(upstream.url + path, json=body, headers=headers)


def get(url: str, timeout: float = 10.0) -> httpx.Response:
    with http(timeout) as client:
        return client.get(url)


def message(model: str = "glm-4.7", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 64, "messages": USER_HI, **extra}


def tool_loop(assistant_content: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A request continuing a tool-use loop: user, assistant (given content), tool_result."""
    return message(
        messages=[
            {"role": "user", "content": "read a"},
            {"role": "assistant", "content": assistant_content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
        ],
        **extra,
    )


def test_public_names_are_exactly_all() -> None:
    public = {
        name
        for name, value in vars(fakes).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
    }
    assert public == set(fakes.__all__)


# ------------------------------------------------------------------ normal answers


def test_non_streaming_reply_names_upstream_model_and_usage(upstream_factory: UpstreamFactory) -> None:
    zai = upstream_factory("zai")
    client = anthropic_client(zai, api_key="k")

    raw = client.messages.with_raw_response.create(model="glm-4.7", max_tokens=64, messages=USER_HI)
    reply = raw.parse()

    assert text_of(reply.content[0]).startswith("[zai] model=glm-4.7")
    assert reply.stop_reason == "end_turn"
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["request-id"].startswith("req_")
    assert raw.headers["anthropic-ratelimit-requests-limit"] == "4000"
    assert zai.last.completed_at is not None  # set before the last byte left: no wait needed


def test_stream_has_anthropic_event_order_and_parses_with_the_sdk(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory("anthropic")
    response = post(up, message("claude-sonnet-5-5", stream=True))
    events = parse_sse(response.content)
    names = [name for name, _ in events]

    assert response.headers["content-type"].startswith("text/event-stream")
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert names.count("content_block_delta") > 1
    assert events[0][1]["message"]["usage"]["input_tokens"] > 0
    assert events[-2][1]["usage"]["output_tokens"] > 0
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert up.last.events_sent == len(events) and up.last.completed_at is not None

    with anthropic_client(up).messages.stream(model="claude-sonnet-5-5", max_tokens=64, messages=USER_HI) as stream:
        final = stream.get_final_message()
    assert text_of(final.content[0]) == "[anthropic] model=claude-sonnet-5-5 hello from the fake anthropic upstream"


def test_tool_use_streams_input_json_deltas(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    up.enqueue(tool_use_reply("Read", {"file_path": "/tmp/a.txt"}))
    up.enqueue(tool_use_reply("Read", {"file_path": "/tmp/a.txt"}))

    with anthropic_client(up).messages.stream(model="m", max_tokens=64, messages=USER_HI) as stream:
        final = stream.get_final_message()
    raw = parse_sse(post(up, message(stream=True)).content)

    assert final.stop_reason == "tool_use"
    tool_use = final.content[0]
    assert isinstance(tool_use, ToolUseBlock)
    assert tool_use.name == "Read"
    assert tool_use.input == {"file_path": "/tmp/a.txt"}
    assert raw[1][1]["content_block"] == {"type": "tool_use", "id": raw[1][1]["content_block"]["id"], "name": "Read", "input": {}}
    deltas = [data["delta"] for name, data in raw if name == "content_block_delta"]
    assert {delta["type"] for delta in deltas} == {"input_json_delta"}
    assert json.loads("".join(delta["partial_json"] for delta in deltas)) == {"file_path": "/tmp/a.txt"}


def test_count_tokens_models_and_unknown_paths(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    no_count = upstream_factory("zai", count_tokens=False)

    count = post(up, {"model": "m", "messages": USER_HI}, "/v1/messages/count_tokens?beta=true")
    models = get(up.url + "/v1/models?limit=1000")
    unknown = get(up.url + "/v2/nothing")
    missing = post(no_count, {"model": "m", "messages": USER_HI}, "/v1/messages/count_tokens")

    assert count.status_code == 200 and count.json()["input_tokens"] > 0
    assert up.last.path == "/v2/nothing"
    assert up.requests[0].path == "/v1/messages/count_tokens?beta=true"
    assert models.json()["data"][0]["type"] == "model" and models.json()["has_more"] is False
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found_error"
    assert missing.status_code == 404


def test_requests_are_recorded_with_headers_in_order_and_raw_body(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    body = b'{"model":"m","max_tokens":5,  "messages":[]}'
    headers = [("X-Custom-B", "2"), ("x-custom-a", "1"), ("Anthropic-Beta", "a-1,b-2"), ("anthropic-beta", "c-3")]

    with http() as client:
        client.post(up.url + "/v1/messages?beta=true", content=body, headers=headers)
    seen = up.wait_for(1)[0]

    names = [name for name, _ in seen.raw_headers]
    assert names.index("X-Custom-B") < names.index("x-custom-a")
    assert seen.headers["x-custom-b"] == "2" and seen.headers["X-CUSTOM-A"] == "1"
    assert seen.betas == ["a-1", "b-2", "c-3"]
    assert seen.body == body
    assert seen.json["max_tokens"] == 5
    assert (seen.method, seen.path, seen.path_only, seen.query) == ("POST", "/v1/messages?beta=true", "/v1/messages", "beta=true")


def test_keep_alive_reuses_one_connection(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    client = anthropic_client(up)
    for _ in range(3):
        client.messages.create(model="m", max_tokens=5, messages=USER_HI)

    assert len(up.requests) == 3
    assert up.connections_opened == 1
    assert up.connections[0].requests == 3


def test_choose_and_keep_requests(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory(keep_requests=2)
    up.set_default(Choose(lambda recorded: Error(529) if recorded.model == "busy" else Reply()))

    statuses = [post(up, message(model)).status_code for model in ("busy", "ok", "busy", "ok", "ok")]
    kept = up.requests
    up.clear()
    post(up, message())

    assert statuses == [529, 200, 529, 200, 200]
    assert [r.outcome for r in kept] == ["reply", "reply"]  # trimmed to the latest 2 at the 5th
    assert up.request_count == 6 and len(up.wait_for(1)) == 1


def test_custom_handler_answers(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()

    async def teapot(request: web.BaseRequest, recorded: RecordedRequest) -> web.StreamResponse:
        return web.json_response({"model_seen": recorded.model}, status=418)

    up.enqueue(Handler(teapot))
    response = post(up, message("glm-4.7"))

    assert response.status_code == 418 and response.json() == {"model_seen": "glm-4.7"}
    finished = up.wait_for_completion()
    assert finished.status == 418 and finished.completed_at is not None


# ------------------------------------------------------------------ errors and failures


def test_errors_carry_anthropic_shape_retry_after_and_request_id(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    up.enqueue(Error(429, retry_after=30), Error(529), Error(500, headers={"x-extra": "1"}))
    client = anthropic_client(up)

    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="m", max_tokens=5, messages=USER_HI)
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model="m", max_tokens=5, messages=USER_HI)
    with pytest.raises(anthropic.InternalServerError) as failed:
        client.messages.create(model="m", max_tokens=5, messages=USER_HI)
    after = client.messages.create(model="m", max_tokens=5, messages=USER_HI)

    assert limited.value.response.headers["retry-after"] == "30"
    body = limited.value.body
    assert isinstance(body, dict)
    assert limited.value.response.headers["request-id"] == body["request_id"]
    assert body["error"]["type"] == "rate_limit_error"
    assert failed.value.response.headers["x-extra"] == "1"
    assert text_of(after.content[0]).startswith("[anthropic]")  # the queue is used up: back to normal
    assert [r.outcome for r in up.requests] == ["error", "error", "error", "reply"]


def test_raw_sends_any_status_body_and_headers_as_given(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    up.enqueue(
        Raw(429, {"error": {"code": "1302", "message": "busy"}}),
        Raw(502, "<html><title>502 Bad Gateway</title></html>", headers={"content-type": "text/html"}),
        Raw(500, b"\x00 not text"),
    )
    coded, html, binary = (post(up, message()) for _ in range(3))

    assert (coded.status_code, coded.json()) == (429, {"error": {"code": "1302", "message": "busy"}})
    assert coded.headers["content-type"] == "application/json" and "request-id" not in coded.headers
    assert (html.status_code, html.text) == (502, "<html><title>502 Bad Gateway</title></html>")
    assert html.headers["content-type"] == "text/html"
    assert (binary.status_code, binary.content) == (500, b"\x00 not text")
    assert [r.outcome for r in up.requests] == ["raw", "raw", "raw"]


def test_set_default_applies_until_cleared(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    up.set_default(Error(401, message="invalid x-api-key"))

    first = post(up, message())
    second = post(up, message())
    up.set_default(None)
    third = post(up, message())

    assert (first.status_code, second.status_code, third.status_code) == (401, 401, 200)
    assert first.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}


def test_hang_records_when_the_client_gives_up(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    up.enqueue(Hang())

    with pytest.raises(httpx.ReadTimeout):
        post_timeout(up, 0.2)
    gave_up = time.monotonic()
    seen = up.wait_for_disconnect()

    assert seen.outcome == "hang" and seen.status is None
    assert seen.client_disconnected
    assert seen.disconnected_at is not None and seen.disconnected_at - gave_up < 2.0


def post_timeout(up: FakeUpstream, timeout: float) -> httpx.Response:
    with http(timeout) as client:
        return client.post(up.url + "/v1/messages", json=message())


def test_stopping_the_fake_cuts_a_hung_request_instead_of_answering() -> None:
    up = FakeUpstream().start()
    up.enqueue(Hang())
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, up, message())
        up.wait_for(1)
        up.stop()
        with pytest.raises(httpx.RemoteProtocolError):
            pending.result(timeout=10)
    assert not up.last.client_disconnected


def test_hang_after_head_sends_status_then_nothing(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    up.enqueue(Hang(send_head=True))

    with http(0.3) as client, client.stream("POST", up.url + "/v1/messages", json=message()) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            response.read()
    assert up.wait_for_disconnect().client_disconnected


def test_client_leaving_mid_stream_is_recorded(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    up.enqueue(Reply(event_delay_s=0.05))

    with http(5.0) as client:
        with client.stream("POST", up.url + "/v1/messages", json=message(stream=True)) as response:
            lines = response.iter_lines()
            assert next(lines) == "event: message_start"
        left = time.monotonic()
    seen = up.wait_for_disconnect()

    assert seen.client_disconnected and seen.completed_at is None
    assert 0 < seen.events_sent < 10
    assert seen.disconnected_at is not None and seen.disconnected_at - left < 2.0


def test_drop_after_events_cuts_the_stream(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    up.enqueue(Reply(drop_after_events=3))
    received = b""

    with http(5.0) as client, client.stream("POST", up.url + "/v1/messages", json=message(stream=True)) as response:
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                received += chunk

    assert [name for name, _ in parse_sse(received)] == ["message_start", "content_block_start", "ping"]
    seen = up.last
    assert seen.events_sent == 3 and seen.disconnected_at is not None
    assert not seen.client_disconnected  # the fake hung up, not the client


def test_drop_before_any_response(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    up.enqueue(Drop())

    with pytest.raises(httpx.RemoteProtocolError):
        post(up, message())
    assert up.last.outcome == "drop" and up.last.status is None


def test_silent_after_events_then_client_timeout(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    up.enqueue(Reply(silent_after_events=2))
    received = b""

    with http(0.3) as client, client.stream("POST", up.url + "/v1/messages", json=message(stream=True)) as response:
        with pytest.raises(httpx.ReadTimeout):
            for chunk in response.iter_raw():
                received += chunk

    assert [name for name, _ in parse_sse(received)] == ["message_start", "content_block_start"]
    assert up.wait_for_disconnect().client_disconnected


def test_error_event_mid_stream(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    up.enqueue(Reply(error_after_events=2))

    events = parse_sse(post(up, message(stream=True)).content)

    assert [name for name, _ in events] == ["message_start", "content_block_start", "error"]
    assert events[-1][1]["error"]["type"] == "overloaded_error"


def test_slow_stream_spaces_its_events(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    up.enqueue(Reply(content=(Text("a b"),), event_delay_s=0.05))

    started = time.monotonic()
    events = parse_sse(post(up, message(stream=True)).content)

    # 8 events, 7 pauses of 50 ms: a lower bound only, which a slow machine cannot break.
    assert len(events) == 8
    assert time.monotonic() - started >= 7 * 0.05


def test_closed_port_refuses_connections() -> None:
    port = closed_port()
    with pytest.raises(httpx.ConnectError):
        get(f"http://127.0.0.1:{port}/health", timeout=2.0)


def test_black_hole_accepts_and_never_answers(black_hole: BlackHole) -> None:
    with pytest.raises(httpx.ReadTimeout):
        with http(0.3) as client:
            client.post(black_hole.url + "/v1/messages", json=message())
    assert black_hole.wait_for_connections(1) == 1
    assert black_hole.bytes_received > 0


# ------------------------------------------------------------------ credentials


def test_required_api_key_and_credential_recording(upstream_factory: UpstreamFactory) -> None:
    zai = upstream_factory("zai", api_key="zai-secret")

    missing = post(zai, message())
    wrong = post(zai, message(), **{"x-api-key": "sk-client"})
    right = post(zai, message(), **{"x-api-key": "zai-secret"})

    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing.json()["error"] == {"type": "authentication_error", "message": "x-api-key header is required"}
    assert zai.credentials_seen() == [("x-api-key", "sk-client"), ("x-api-key", "zai-secret")]
    assert zai.saw("sk-client") and not zai.saw("never-sent")
    assert [r.outcome for r in zai.requests] == ["rejected", "rejected", "reply"]


def test_bearer_token_and_oauth_beta(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory(bearer="oauth-token", oauth_beta_required=True)

    no_beta = post(up, message(), authorization="Bearer oauth-token")
    with_beta = post(up, message(), authorization="Bearer oauth-token", **{"anthropic-beta": "x-1,oauth-2025-04-20"})
    as_key = post(up, message(), **{"x-api-key": "oauth-token"})

    assert no_beta.status_code == 401
    assert no_beta.json()["error"]["message"] == "OAuth authentication is currently not supported."
    assert with_beta.status_code == 200
    assert as_key.status_code == 401


# ------------------------------------------------------------------ thinking signatures


def test_streamed_signature_verifies_and_is_rejected_elsewhere(upstream_factory: UpstreamFactory) -> None:
    anthropic_up = upstream_factory("anthropic", strict_signatures=True)
    zai = upstream_factory("zai", strict_signatures=True)
    anthropic_up.enqueue(thinking_reply("Think first.", "done"))

    with anthropic_client(anthropic_up).messages.stream(model="m", max_tokens=64, messages=USER_HI) as stream:
        final = stream.get_final_message()
    thinking = final.content[0]
    history = message(
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in final.content]},
            {"role": "user", "content": "again"},
        ]
    )

    assert thinking.type == "thinking" and thinking.signature == anthropic_up.sign("Think first.")
    assert zai.sign("Think first.") != thinking.signature
    assert post(anthropic_up, history).status_code == 200
    foreign = post(zai, history)
    assert foreign.status_code == 400
    assert foreign.json()["error"] == {
        "type": "invalid_request_error",
        "message": "messages.1.content.0: Invalid `signature` in `thinking` block",
    }


def test_tampered_thinking_text_is_rejected(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory(strict_signatures=True)
    block = {"type": "thinking", "thinking": "edited", "signature": up.sign("original")}
    history = message(messages=[USER_HI[0], {"role": "assistant", "content": [block]}, {"role": "user", "content": "x"}])

    assert post(up, history).status_code == 400


def test_non_streaming_thinking_and_redacted_thinking(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory("anthropic", strict_signatures=True)
    other = upstream_factory("zai", strict_signatures=True)
    up.enqueue(Reply(content=(Thinking("t"), RedactedThinking(), Text("answer"))))

    reply = post(up, message()).json()
    blocks = reply["content"]
    history = message(messages=[USER_HI[0], {"role": "assistant", "content": blocks}, {"role": "user", "content": "x"}])
    only_redacted = message(
        messages=[USER_HI[0], {"role": "assistant", "content": blocks[1:]}, {"role": "user", "content": "x"}]
    )

    assert [b["type"] for b in blocks] == ["thinking", "redacted_thinking", "text"]
    assert blocks[0]["signature"] == up.sign("t")
    assert post(up, history).status_code == 200
    rejected = post(other, only_redacted)
    assert rejected.status_code == 400
    assert rejected.json()["error"]["message"] == "messages.1.content.0: Invalid `data` in `redacted_thinking` block"


def test_streamed_redacted_thinking_arrives_whole(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    data = up.redacted_data()
    up.enqueue(Reply(content=(RedactedThinking(data), Text("x"))))

    events = parse_sse(post(up, message(stream=True)).content)

    assert events[1][1]["content_block"] == {"type": "redacted_thinking", "data": data}
    assert events[3][0] == "content_block_stop"  # after the ping: no deltas for a redacted block


def test_thinking_must_lead_a_tool_use_turn_when_enabled(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory(strict_signatures=True)
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}
    signed = {"type": "thinking", "thinking": "plan", "signature": up.sign("plan")}
    enabled = {"type": "enabled", "budget_tokens": 1024}

    bare = post(up, tool_loop([{"type": "text", "text": "reading"}, tool_use], thinking=enabled))
    led = post(up, tool_loop([signed, tool_use], thinking=enabled))
    adaptive = post(up, tool_loop([tool_use], thinking={"type": "adaptive"}))
    off = post(up, tool_loop([tool_use]))

    assert bare.status_code == 400
    assert bare.json()["error"]["message"].startswith(
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`. "
        "When `thinking` is enabled, a final `assistant` message must start with a thinking block"
    )
    assert (led.status_code, adaptive.status_code, off.status_code) == (200, 200, 200)


# ------------------------------------------------------------------ strict third party


def test_strict_third_party_rejections_say_why(upstream_factory: UpstreamFactory) -> None:
    zai = upstream_factory("zai", strict_third_party=True, allowed_betas={"claude-code-20250219"})
    system_turn = message(messages=[USER_HI[0], {"role": "system", "content": "be brief"}])

    system = post(zai, system_turn)
    forced = post(zai, message(tool_choice={"type": "tool", "name": "Read"}))
    beta = post(zai, message(), **{"anthropic-beta": "claude-code-20250219,context-management-2025-06-27"})
    allowed = post(zai, message(tool_choice={"type": "auto"}), **{"anthropic-beta": "claude-code-20250219"})
    foreign = post(zai, tool_loop([{"type": "thinking", "thinking": "x", "signature": "c2ln"}]))

    # Z.AI's own answer: a FastAPI 422, not Anthropic's shape.
    assert system.status_code == 422
    assert system.json()["detail"][0]["loc"] == ["body", "messages", 1, "role"]
    assert system.json()["detail"][0]["msg"] == "Input should be 'user' or 'assistant'"
    assert forced.status_code == 400 and forced.json()["error"]["message"].startswith("tool_choice:")
    assert beta.status_code == 400 and "context-management-2025-06-27" in beta.json()["error"]["message"]
    assert allowed.status_code == 200
    assert foreign.status_code == 400 and "Invalid `signature`" in foreign.json()["error"]["message"]


def test_rejected_fields(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory(rejected_fields=["context_management"])
    response = post(up, message(context_management={"edits": []}))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "context_management: Extra inputs are not permitted"


def test_captured_claude_code_requests_replay_to_a_fake_byte_for_byte(upstream_factory: UpstreamFactory) -> None:
    up = upstream_factory()
    captured = claude_code.load_all(api_key="sk-replayed")

    with http(10.0) as client:
        statuses = [request.send(client, up.url).status_code for request in captured]

    assert statuses == [200] * len(captured)
    assert len(captured) == len(list(claude_code.CAPTURED_DIR.glob("*.json"))) == 9
    for request, seen in zip(captured, up.requests):
        assert (seen.method, seen.path) == (request.method, request.path)
        assert seen.body == (request.body or b"")
        assert seen.headers["x-api-key"] == "sk-replayed"
        for name, value in request.headers:
            assert seen.headers[name] == value


def test_captured_request_loading() -> None:
    raw = json.loads((claude_code.CAPTURED_DIR / "cc_print_haiku_stream.json").read_text())
    haiku = claude_code.load("cc_print_haiku_stream", api_key="k")
    names = {name.lower() for name, _ in haiku.headers}

    assert haiku.body == json.dumps(raw["body"], separators=(",", ":"), ensure_ascii=False).encode()
    assert haiku.path == "/v1/messages?beta=true" and haiku.model == "claude-haiku-5-5" and haiku.stream
    assert not names & {"host", "content-length", "accept-encoding"}
    assert haiku.header_dict["x-api-key"] == "k"
    assert claude_code.load("cc_print_haiku_stream", api_key=None).header_dict.get("x-api-key") is None
    assert haiku.with_model("claude-opus-5-5").model == "claude-opus-5-5"
    bearer = claude_code.load("cc_print_haiku_stream", api_key=None, auth_token="t").header_dict
    assert bearer["authorization"] == "Bearer t"
    assert claude_code.load("cc_gateway_model_discovery_get_models").body is None


# ------------------------------------------------------------------ config text


def test_routes_toml_builds_valid_toml() -> None:
    text = routes_toml(
        providers={
            "zai": {"base_url": "http://127.0.0.1:1", "key": {"env": "ZAI_API_KEY"}, "drop_fields": ["metadata"]},
            "anthropic": {"base_url": "http://127.0.0.1:2", "key": [{"client": True}, {"oauth_file": "~/x"}]},
        },
        routes=[{"name": "haiku", "match": ["claude-haiku-*"], "to": [{"provider": "zai", "model": "glm-4.7"}]}],
        defaults={"timeout_s": 5},
    )
    parsed = tomllib.loads(text)

    assert parsed["providers"]["anthropic"]["key"] == [{"client": True}, {"oauth_file": "~/x"}]
    assert parsed["route"][0]["to"] == [{"provider": "zai", "model": "glm-4.7"}]
    assert parsed["defaults"] == {"timeout_s": 5}


def test_profile_with_urls_replaces_only_base_urls() -> None:
    profile = (
        'version = 1\n[providers.zai]\nbase_url = "https://api.z.ai/api/anthropic"  # z\nkey = { env = "K" }\n'
        '[providers.anthropic]\nbase_url = "https://api.anthropic.com"\n'
    )
    text = profile_with_urls(profile, {"zai": "http://127.0.0.1:9"})

    assert tomllib.loads(text)["providers"]["zai"]["base_url"] == "http://127.0.0.1:9"
    assert 'base_url = "https://api.anthropic.com"' in text and "# z" in text
    with pytest.raises(ValueError):
        profile_with_urls(profile, {"missing": "http://x"})


# ------------------------------------------------------------------ the gateway fixture


def test_gateway_fixture_controls_the_environment(
    gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", "/should/not/leak")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-real-developer-key")
    gateway = gateway_factory('version = 1\n', env={"ZAI_API_KEY": "zai-key"}, command=STANDIN)

    health = gateway.health()

    assert health["env"]["HOME"] == str(gateway.home)
    assert health["env"]["CLAUDE_CONFIG_DIR"] is None and health["env"]["ANTHROPIC_API_KEY"] is None
    assert health["env"]["PATH"]
    assert health["env"]["ZAI_API_KEY"] == "zai-key"
    assert health["config_text"] == "version = 1\n" and gateway.config_path is not None
    assert health["argv"] == [
        "serve", "--config", str(gateway.config_path), "--host", "127.0.0.1", "--port", str(gateway.port), "--no-watch"
    ]
    assert health["cwd"] == str(gateway.cwd) and not list(gateway.cwd.iterdir())
    assert gateway.stop() == 0
    assert "stopping on SIGINT" in gateway.logs()


def test_gateway_fixture_without_config_runs_in_the_given_cwd(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    gateway = gateway_factory(None, cwd=project, watch=True, command=STANDIN)

    health = gateway.health()

    assert "--config" not in health["argv"] and "--no-watch" not in health["argv"]
    assert health["cwd"] == str(project) and gateway.config_path is None


def test_gateway_fixture_reports_a_failed_start(gateway_factory: GatewayFactory) -> None:
    with pytest.raises(GatewayStartError, match="exiting with 3 as asked"):
        gateway_factory("version = 1\n", args=["--exit-with", "3"], command=STANDIN)
    with pytest.raises(GatewayStartError, match="not 200 within"):
        gateway_factory("version = 1\n", args=["--unhealthy"], command=STANDIN, startup_timeout=0.5)


def test_write_claude_credentials(gateway_home: Path) -> None:
    path = write_claude_credentials(gateway_home, "oauth-abc", expires_at_ms=123)
    data = json.loads(path.read_text())

    assert path == gateway_home / ".claude" / ".credentials.json"
    assert data["claudeAiOauth"]["accessToken"] == "oauth-abc" and data["claudeAiOauth"]["expiresAt"] == 123


def test_gateway_fixture_runs_the_real_gateway(upstream_factory: UpstreamFactory, gateway_factory: GatewayFactory) -> None:
    zai = upstream_factory("zai", api_key="zai-key")
    config = routes_toml(
        providers={"zai": {"base_url": zai.url, "key": {"env": "ZAI_API_KEY"}}},
        routes=[{"name": "all", "match": "*", "to": [{"provider": "zai", "model": "glm-4.7"}]}],
    )
    gateway = gateway_factory(config, env={"ZAI_API_KEY": "zai-key"})

    reply = anthropic_client(gateway, api_key="sk-client").messages.create(
        model="claude-haiku-5-5", max_tokens=5, messages=USER_HI
    )

    assert gateway.health()["config"]["path"] == str(gateway.config_path)
    assert text_of(reply.content[0]).startswith("[zai] model=glm-4.7")
    assert zai.credentials_seen() == [("x-api-key", "zai-key")]
    assert gateway.stop() == 0


# ------------------------------------------------------------------ the in-process gateway


def zai_config(zai: FakeUpstream) -> str:
    return routes_toml(
        providers={"zai": {"base_url": zai.url, "key": {"env": "ZAI_API_KEY"}}},
        routes=[{"name": "all", "match": "*", "to": [{"provider": "zai", "model": "glm-4.7"}]}],
    )


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_inprocess_gateway_serves_the_real_app_with_its_environment(
    upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    zai = upstream_factory("zai", api_key="zai-key")
    gateway = inprocess_gateway(zai_config(zai), env={"ZAI_API_KEY": "zai-key"})

    with anthropic_client(gateway, api_key="sk-client") as client:
        reply = client.messages.create(model="claude-haiku-5-5", max_tokens=5, messages=USER_HI)
    health = gateway.health()
    line = gateway.wait_for_log("gateway.request: request id=")

    assert text_of(reply.content[0]).startswith("[zai] model=glm-4.7")
    assert zai.credentials_seen() == [("x-api-key", "zai-key")]
    assert health["config"]["path"] == str(gateway.config_path) and health["pid"] == os.getpid()
    assert gateway.url == f"http://127.0.0.1:{gateway.port}" and gateway.running
    assert "route=all tried=zai:200 used=zai upstream_model=glm-4.7 status=200" in line
    assert os.environ["ZAI_API_KEY"] == "zai-key" and "HTTPS_PROXY" not in os.environ
    assert Path(os.environ["HOME"]) == gateway.config_path.parents[1] / "home"


def test_inprocess_gateway_logs_json_and_leaves_pytest_logging_alone(
    upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory, caplog: pytest.LogCaptureFixture
) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    zai = upstream_factory("zai", api_key="zai-key")
    gateway = inprocess_gateway(zai_config(zai), env={"ZAI_API_KEY": "zai-key"}, log_format="json")

    assert gateway.request("POST", "/v1/messages", json=message()).status_code == 200
    gateway.wait_for_log('"event":"request"')
    logging.getLogger("a.test").warning("the test's own record")

    (line,) = [line for line in gateway.logs().splitlines() if '"event":"request"' in line]
    assert json.loads(line)["logger"] == "gateway.request" and json.loads(line)["status"] == 200
    assert root.level == level and [h for h in root.handlers if h not in handlers] == [gateway._records]
    assert "the test's own record" in caplog.text and "the test's own record" not in gateway.logs()
    assert any(record.name == "gateway.request" for record in caplog.records)  # pytest still sees them
    gateway.stop()
    assert root.handlers == handlers and root.level == level
    assert logging.getLogger("gateway").level == logging.NOTSET


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc")
def test_inprocess_gateway_stops_without_leaking_threads_sockets_or_loops(upstream_factory: UpstreamFactory, tmp_path: Path) -> None:
    from sanic import Sanic

    from fakes.inprocess import start_inprocess_gateway

    zai = upstream_factory("zai", api_key="zai-key")
    threads, fds = set(threading.enumerate()), open_fds()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ZAI_API_KEY", "zai-key")
        gateway = start_inprocess_gateway(zai_config(zai), workdir=tmp_path)
        with http() as client:
            streamed = client.post(gateway.url + "/v1/messages", json=message(stream=True))
        loop = gateway._thread.loop

        gateway.stop()

    assert streamed.status_code == 200 and "message_stop" in streamed.text
    assert set(threading.enumerate()) == threads
    assert loop.is_closed() and not gateway.running
    assert gateway.name not in Sanic._app_registry
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", gateway.port), timeout=2).close()
    # The fake upstream closes its side of the gateway's pooled connection when it sees it go.
    deadline = time.monotonic() + 5
    while open_fds() > fds:
        assert time.monotonic() < deadline, f"{open_fds() - fds} file descriptors left open"
        time.sleep(0.02)
    gateway.stop()  # again: nothing to do


def test_two_inprocess_gateways_at_once_each_serve_and_log_their_own(
    upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory
) -> None:
    zai, other = upstream_factory("zai", api_key="zai-key"), upstream_factory("other", api_key="zai-key")
    first = inprocess_gateway(zai_config(zai), env={"ZAI_API_KEY": "zai-key"})
    second = inprocess_gateway(zai_config(other))

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda gw: gw.request("POST", "/v1/messages", json=message()), [first, second]))
    first.wait_for_log("used=zai ")
    second.wait_for_log("used=zai ")

    assert [a.json()["content"][0]["text"][:7] for a in answers] == ["[zai] m", "[other]"]
    assert first.port != second.port and first.app is not second.app
    assert first.logs().count("gateway.request:") == second.logs().count("gateway.request:") == 1
    first.stop()
    assert second.request("POST", "/v1/messages", json=message()).status_code == 200
    assert other.request_count == 2


def test_inprocess_gateway_stop_cuts_a_request_still_in_flight_after_the_grace(
    upstream_factory: UpstreamFactory, inprocess_gateway: InProcessFactory
) -> None:
    zai = upstream_factory("zai", api_key="zai-key")
    zai.enqueue(Hang())
    gateway = inprocess_gateway(zai_config(zai), env={"ZAI_API_KEY": "zai-key"})

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(gateway.request, "POST", "/v1/messages", json=message())
        zai.wait_for(1)
        started = time.monotonic()
        gateway.stop(grace=0.2)
        stopped_after = time.monotonic() - started
        with pytest.raises(httpx.RemoteProtocolError):
            pending.result(timeout=5)

    assert 0.2 <= stopped_after < 2.0
    assert zai.wait_for_disconnect().client_disconnected  # the upstream call was closed too


def test_inprocess_gateway_raises_the_config_error_and_holds_nothing(tmp_path: Path) -> None:
    from sanic import Sanic

    from fakes.inprocess import start_inprocess_gateway
    from rules.errors import ConfigError

    apps = set(Sanic._app_registry)
    config = routes_toml(providers={"a": {"base_url": "http://127.0.0.1:9", "key": {"client": True}}},
                         routes=[{"name": "all", "match": "*", "to": "b"}])

    with pytest.raises(ConfigError, match="routes.toml"):
        start_inprocess_gateway(config, workdir=tmp_path)

    assert set(Sanic._app_registry) == apps
