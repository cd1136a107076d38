"""Fallback chains, cooldowns, stream failures and client disconnects, end to end.

One gateway serves the module, in this process (fakes.inprocess). Cooldowns are kept per credential of `client` key sources, so a
test that triggers one uses an API key of its own and leaves the others unaffected.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from fakes import Error, FakeUpstream, Hang, InProcessGateway, Reply, closed_port, parse_sse
from fakes.config import profile_with_urls, routes_toml
from fakes.gateway import anthropic_client
from fakes.inprocess import apply_environment, running_inprocess_gateway
from fakes.sockets import BlackHole

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZAI_KEY = "zai-key-resilience-000"


class Setup:
    def __init__(self, gateway: InProcessGateway, primary: FakeUpstream, secondary: FakeUpstream, limited: FakeUpstream) -> None:
        self.gateway = gateway
        self.primary = primary
        self.secondary = secondary
        self.limited = limited

    def post(self, model: str, *, key: str | None = None, stream: bool = False, timeout: float = 30) -> httpx.Response:
        return self.gateway.request(
            "POST", "/v1/messages", timeout=timeout,
            headers={"x-api-key": key or _fresh_key(), "anthropic-version": "2023-06-01"},
            json={"model": model, "max_tokens": 16, "stream": stream, "messages": [{"role": "user", "content": "hi"}]},
        )


def _fresh_key() -> str:
    return f"sk-test-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("resilience")
    with (
        FakeUpstream("primary") as primary,
        FakeUpstream("secondary", api_key=ZAI_KEY) as secondary,
        FakeUpstream("limited") as limited,
        BlackHole() as hole,
    ):
        dead = f"http://127.0.0.1:{closed_port()}"
        config = routes_toml(
            providers={
                "primary": {"base_url": primary.url, "key": {"client": True}, "timeout_s": 1},
                "secondary": {"base_url": secondary.url, "key": {"env": "ZAI_API_KEY"}},
                "dead": {"base_url": dead, "key": {"client": True}},
                "hole": {"base_url": hole.url, "key": {"client": True}, "timeout_s": 1},
                "limited": {"base_url": limited.url, "key": {"client": True}, "max_concurrent": 1, "max_queue": 0},
                "queued": {"base_url": limited.url, "key": {"client": True}, "max_concurrent": 1, "max_queue": 8},
            },
            routes=[
                {"name": "fb", "match": "fb-*", "to": [{"provider": "primary"}, {"provider": "secondary"}]},
                {"name": "only", "match": "only-*", "to": "primary"},
                {"name": "dead", "match": "dead-*", "to": [{"provider": "dead"}, {"provider": "secondary"}]},
                {"name": "hole", "match": "hole-*", "to": [{"provider": "hole"}, {"provider": "secondary"}]},
                {"name": "nothing", "match": "nothing-*", "to": [{"provider": "dead"}, {"provider": "hole"}]},
                {"name": "lim", "match": "lim-*", "to": "limited"},
                {"name": "queue", "match": "q-*", "to": "queued"},
                {"name": "lim2", "match": "lim2-*", "to": [{"provider": "limited"}, {"provider": "secondary"}]},
                {"name": "teapot", "match": "teapot-*", "to": [{"provider": "primary"}, {"provider": "secondary"}], "fallback_on": [418]},
            ],
        )
        with running_inprocess_gateway(config, workdir=root / "gw", env={"ZAI_API_KEY": ZAI_KEY}) as gateway:
            yield Setup(gateway, primary, secondary, limited)


@pytest.fixture(autouse=True)
def _reset(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    # The gateway reads this process's environment, which each test begins without ZAI_API_KEY.
    apply_environment(monkeypatch, setup.gateway.env)
    for upstream in (setup.primary, setup.secondary, setup.limited):
        upstream.set_default(None)
        upstream.clear()


def _error(response: httpx.Response) -> tuple[int, str, str]:
    doc = response.json()
    return response.status_code, doc["error"]["type"], doc["error"]["message"]


# --- fallback -----------------------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529])
def test_fallback_status_goes_to_the_next_target_and_the_client_never_sees_it(setup: Setup, status: int) -> None:
    setup.primary.enqueue(Error(status))
    response = setup.post("fb-model")
    assert response.status_code == 200
    assert response.json()["content"][0]["text"].startswith("[secondary] model=fb-model")
    assert setup.secondary.last.credentials == [("x-api-key", ZAI_KEY)]


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_do_not_fall_back(setup: Setup, status: int) -> None:
    setup.primary.enqueue(Error(status))
    response = setup.post("fb-model")
    assert response.status_code == status
    assert setup.secondary.requests == []


def test_route_fallback_on_replaces_the_defaults(setup: Setup) -> None:
    setup.primary.enqueue(Error(500))
    assert setup.post("teapot-1").status_code == 500
    setup.primary.enqueue(Error(418, message="I'm a teapot"))
    assert setup.post("teapot-1").status_code == 200
    assert setup.secondary.last.model == "teapot-1"


def test_connection_refused_falls_back(setup: Setup) -> None:
    response = setup.post("dead-1")
    assert response.status_code == 200
    assert response.json()["content"][0]["text"].startswith("[secondary]")


def test_no_response_head_within_timeout_falls_back(setup: Setup) -> None:
    response = setup.post("hole-1", stream=True)
    assert response.status_code == 200
    assert parse_sse(response.text)[-1][0] == "message_stop"
    assert setup.secondary.last.stream


def test_streaming_request_falls_back_before_the_first_byte(setup: Setup) -> None:
    setup.primary.enqueue(Error(529))
    with anthropic_client(setup.gateway, api_key=_fresh_key()).messages.stream(
        model="fb-stream", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert stream.get_final_message().content[0].text.startswith("[secondary]")  # type: ignore[union-attr]


def test_every_target_failing_returns_the_last_upstream_error_unchanged(setup: Setup) -> None:
    setup.primary.enqueue(Error(500))
    setup.secondary.enqueue(Error(503, message="secondary down", retry_after=7))
    response = setup.post("fb-both")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["message"] == "secondary down"


def test_every_target_unreachable_is_a_gateway_error_naming_each(setup: Setup) -> None:
    status, kind, message = _error(setup.post("nothing-1"))
    assert (status, kind) == (504, "timeout_error")
    assert message.startswith("no provider could take the request: dead: ")
    assert "hole: http://127.0.0.1:" in message and "sent nothing for 1 s" in message


# --- cooldowns ----------------------------------------------------------------------------

def test_rate_limited_provider_is_skipped_until_retry_after_then_asked_again(setup: Setup) -> None:
    key = _fresh_key()
    setup.primary.enqueue(Error(429, retry_after=2))
    assert setup.post("fb-cool", key=key).json()["content"][0]["text"].startswith("[secondary]")
    assert len(setup.primary.requests) == 1
    for _ in range(3):
        assert setup.post("fb-cool", key=key).json()["content"][0]["text"].startswith("[secondary]")
    assert len(setup.primary.requests) == 1  # skipped while cooling down
    cooldowns = [c for c in setup.gateway.health()["resilience"]["cooldowns"] if c["reason"] == "retry-after: 2"]
    assert [c["provider"] for c in cooldowns] == ["primary"]
    assert 0 < cooldowns[0]["seconds_left"] <= 2 and cooldowns[0]["credential"].startswith("client#")
    # Another credential of the same provider is not affected.
    assert setup.post("fb-cool").json()["content"][0]["text"].startswith("[primary]")
    deadline = time.monotonic() + 10
    while True:
        text = setup.post("fb-cool", key=key).json()["content"][0]["text"]
        if text.startswith("[primary]"):
            break
        assert time.monotonic() < deadline, "the cooldown never ended"
        time.sleep(0.1)
    assert "cooldown over" in setup.gateway.logs()


def test_last_target_is_asked_even_while_cooling_down(setup: Setup) -> None:
    key = _fresh_key()
    setup.primary.enqueue(Error(429, retry_after=30))
    assert setup.post("only-1", key=key).status_code == 429
    assert setup.post("only-1", key=key).status_code == 200
    assert len(setup.primary.requests) == 2


# --- streams that break -------------------------------------------------------------------

def _events(response: httpx.Response) -> list[tuple[str, dict]]:
    return parse_sse(response.text)


def test_upstream_disconnect_mid_stream_ends_with_an_error_event(setup: Setup) -> None:
    setup.primary.enqueue(Reply(drop_after_events=3))
    response = setup.post("fb-drop", stream=True)
    events = _events(response)
    assert [name for name, _ in events[:3]] == ["message_start", "content_block_start", "ping"] or len(events) >= 3
    name, data = events[-1]
    assert name == "error"
    assert data["error"]["type"] == "api_error"
    assert "provider 'primary' broke off the stream" in data["error"]["message"]
    assert setup.secondary.requests == []  # bytes were sent: no fallback, no duplicate answer


def test_upstream_silence_mid_stream_ends_with_an_error_event_after_the_timeout(setup: Setup) -> None:
    setup.primary.enqueue(Reply(silent_after_events=2))
    started = time.monotonic()
    response = setup.post("fb-silent", stream=True)
    name, data = _events(response)[-1]
    assert name == "error" and "sent nothing for 1 s" in data["error"]["message"]
    assert time.monotonic() - started < 10


def test_upstream_error_event_is_relayed_once(setup: Setup) -> None:
    setup.primary.enqueue(Reply(error_after_events=3))
    events = _events(setup.post("fb-err", stream=True))
    assert [name for name, _ in events].count("error") == 1
    assert events[-1][1]["error"]["type"] == "overloaded_error"


def test_sdk_sees_a_broken_stream_as_an_error(setup: Setup) -> None:
    setup.primary.enqueue(Reply(drop_after_events=4))
    with pytest.raises(anthropic.APIStatusError):
        with anthropic_client(setup.gateway, api_key=_fresh_key()).messages.stream(
            model="fb-sdk", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            stream.get_final_message()


# --- client disconnects -------------------------------------------------------------------

def _raw_request(setup: Setup, model: str, stream: bool) -> socket.socket:
    body = (
        f'{{"model": "{model}", "max_tokens": 16, "stream": {str(stream).lower()}, '
        '"messages": [{"role": "user", "content": "hi"}]}'
    ).encode()
    sock = socket.create_connection(("127.0.0.1", setup.gateway.port))
    sock.sendall(
        b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        + f"x-api-key: {_fresh_key()}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return sock


def test_client_leaving_mid_stream_closes_the_upstream_at_once(setup: Setup) -> None:
    setup.primary.enqueue(Reply(event_delay_s=0.2))
    sock = _raw_request(setup, "fb-leave", stream=True)
    assert b"event: message_start" in sock.recv(65536)
    closed_at = time.monotonic()
    sock.close()
    record = setup.primary.wait_for_disconnect()
    assert record.disconnected_at is not None
    assert record.disconnected_at - closed_at < 0.1


def test_client_leaving_while_waiting_for_the_head_closes_the_upstream_at_once(setup: Setup) -> None:
    setup.primary.enqueue(Hang())
    sock = _raw_request(setup, "fb-wait", stream=False)
    setup.primary.wait_for(1)
    closed_at = time.monotonic()
    sock.close()
    record = setup.primary.wait_for_disconnect()
    assert record.disconnected_at is not None
    assert record.disconnected_at - closed_at < 0.1
    # Routine (Esc in Claude Code): a request log line with 499, never an "internal error".
    setup.gateway.wait_for_log("status=499")
    assert "internal error" not in setup.gateway.logs()


# --- concurrency limits -------------------------------------------------------------------

def test_max_concurrent_beyond_the_queue_is_529_or_the_next_target(setup: Setup) -> None:
    setup.limited.set_default(Reply(event_delay_s=0.3))
    holder = threading.Thread(target=setup.post, args=("lim-hold",), kwargs={"stream": True})
    holder.start()
    try:
        setup.limited.wait_for(1)
        status, kind, message = _error(setup.post("lim-2"))
        assert (status, kind) == (529, "overloaded_error")
        assert "provider 'limited' is at its max_concurrent limit (1 in flight, 0 waiting)" in message
        response = setup.post("lim2-2")
        assert response.status_code == 200 and response.json()["content"][0]["text"].startswith("[secondary]")
    finally:
        holder.join()
    assert setup.post("lim-3").status_code == 200  # the slot came back


def test_queued_requests_whose_clients_leave_end_as_quiet_499s(setup: Setup) -> None:
    earlier = len(setup.gateway.logs())  # the module's gateway: only this test's lines count
    # Every request hangs upstream: one handed the slot as the holder leaves, before the loop
    # has seen its own client leave, still ends as a 499 rather than a quick 200.
    setup.limited.set_default(Hang())
    try:
        _leave_the_queue(setup, earlier)
    finally:
        setup.limited.set_default(None)
    assert setup.post("q-after").status_code == 200  # and no slot leaked


def _leave_the_queue(setup: Setup, earlier: int) -> None:
    holder = _raw_request(setup, "q-hold", stream=False)
    setup.limited.wait_for(1)
    queued = [_raw_request(setup, f"q-{n}", stream=False) for n in range(6)]
    deadline = time.monotonic() + 10
    while setup.gateway.health()["resilience"]["concurrency"].get("queued", {}).get("waiting") != 6:
        assert time.monotonic() < deadline, "the requests never queued"
    # Everyone leaves at once, the request in flight too: its slot is released between the
    # queued requests' cancellation and their cleanup (a waiter already off the queue).
    for sock in (holder, *queued):
        sock.close()
    deadline = time.monotonic() + 10
    while setup.gateway.logs()[earlier:].count("status=499") < 7:
        assert time.monotonic() < deadline, setup.gateway.logs()[-3000:]
    logs = setup.gateway.logs()[earlier:]
    assert "status=500" not in logs and "internal error" not in logs and "Traceback" not in logs


# --- the fallback profile -----------------------------------------------------------------

def test_fallback_profile_moves_to_zai_for_the_cooldown_and_the_sdk_never_sees_the_429(
    upstream_factory, inprocess_gateway
) -> None:
    anthropic_up = upstream_factory("anthropic")
    zai = upstream_factory("zai", api_key=ZAI_KEY, strict_third_party=True)
    gateway = inprocess_gateway(
        profile_with_urls(EXAMPLES / "fallback.toml", {"anthropic": anthropic_up.url, "zai": zai.url}),
        env={"ZAI_API_KEY": ZAI_KEY},
    )
    anthropic_up.enqueue(Error(429, retry_after=30))
    client = anthropic_client(gateway, api_key="sk-ant-user-key")
    for _ in range(5):
        started = time.monotonic()
        with client.messages.stream(
            model="claude-sonnet-5-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            assert stream.get_final_message().content[0].text.startswith("[zai]")  # type: ignore[union-attr]
        assert time.monotonic() - started < 5
    assert len(anthropic_up.requests) == 1  # asked once, then skipped for the cooldown
    (cooldown,) = gateway.health()["resilience"]["cooldowns"]
    assert cooldown["provider"] == "anthropic" and 20 < cooldown["seconds_left"] <= 30
