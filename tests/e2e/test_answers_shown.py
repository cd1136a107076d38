"""What a person meets in Claude Code: every error the gateway makes (status, shape, wording,
``x-should-retry``), and the route, provider and model named on every answer.

Claude Code retries an error without ``x-should-retry: false`` for minutes (a 401 about ten
times), and replaces the text of any 404 with its own "There's an issue with the selected model".
So an error a retry cannot fix carries ``x-should-retry: false``, and the ones a person must
read to fix (no route, a doubled ``/v1``) are 400s. One gateway serves the module.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from aiohttp import web

from fakes import Error, FakeUpstream, Handler, closed_port, parse_sse
from fakes.config import routes_toml
from fakes.gateway import GatewayProcess, start_gateway
from fakes.sockets import BlackHole

ZAI_KEY = "zai-key-answers-0123456789"
CLIENT_KEY = "sk-ant-client-answers-000"


@dataclass
class Setup:
    gateway: GatewayProcess
    anthropic: FakeUpstream
    zai: FakeUpstream
    slow: FakeUpstream

    def post(self, model: str, path: str = "/v1/messages", **extra: object) -> httpx.Response:
        body = {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}], **extra}
        return self.gateway.request("POST", path, json=body, headers={"x-api-key": CLIENT_KEY})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("answers")
    with (
        FakeUpstream("anthropic") as anthropic,
        FakeUpstream("zai", api_key=ZAI_KEY) as zai,
        FakeUpstream("slow") as slow,
        BlackHole() as hole,
    ):
        config = routes_toml(
            server={"max_body_mb": 1},
            providers={
                "zai": {"base_url": zai.url, "key": {"env": "ZAI_API_KEY"}, "count_tokens": "estimate"},
                "nokey": {"base_url": zai.url, "key": {"env": "UNSET_ZAI_KEY"}},
                "rejecting": {"base_url": zai.url, "key": {"env": "ZAI_API_KEY"}, "count_tokens": "reject"},
                "dead": {"base_url": f"http://127.0.0.1:{closed_port()}", "key": {"env": "ZAI_API_KEY"}},
                "hole": {"base_url": hole.url, "key": {"env": "ZAI_API_KEY"}, "timeout_s": 1},
                "slow": {"base_url": slow.url, "key": {"client": True}, "max_concurrent": 1, "max_queue": 0},
                "anthropic": {"base_url": anthropic.url, "key": {"client": True}},
            },
            routes=[
                {"name": "haiku", "match": "claude-haiku-*", "to": [{"provider": "zai", "model": "glm-4.7"}]},
                {"name": "nokey", "match": "nokey-*", "to": "nokey"},
                {"name": "rejecting", "match": "reject-*", "to": "rejecting"},
                {"name": "dead", "match": "dead-*", "to": "dead"},
                {"name": "hole", "match": "hole-*", "to": "hole"},
                {"name": "slow", "match": "slow-*", "to": "slow"},
                {"name": "main", "match": "claude-*", "to": "anthropic"},
            ],
        )
        gateway = start_gateway(config, workdir=root, env={"ZAI_API_KEY": ZAI_KEY})
        try:
            yield Setup(gateway, anthropic, zai, slow)
        finally:
            gateway.stop()


@pytest.fixture(autouse=True)
def _clean(setup: Setup) -> None:
    for upstream in (setup.anthropic, setup.zai, setup.slow):
        upstream.clear()
        upstream.set_default(None)


def _error(response: httpx.Response) -> tuple[int, str, str]:
    doc = response.json()
    assert doc["type"] == "error" and set(doc["error"]) == {"type", "message"}, doc
    assert response.headers["content-type"] == "application/json"
    return response.status_code, doc["error"]["type"], doc["error"]["message"]


# --- errors a retry cannot fix: shown at once ---------------------------------------------------


def test_no_credential_is_a_401_shown_at_once_naming_the_provider(setup: Setup) -> None:
    response = setup.post("nokey-1")
    assert _error(response) == (
        401, "authentication_error",
        "no credential for provider 'nokey': env UNSET_ZAI_KEY: environment variable UNSET_ZAI_KEY is not set",
    )
    assert response.headers["x-should-retry"] == "false"
    assert (response.headers["x-gateway-route"], response.headers["x-gateway-provider"]) == ("nokey", "nokey")
    assert response.headers["x-gateway-model"] == "nokey-1"


def test_a_routing_miss_is_a_400_so_claude_code_shows_the_fix(setup: Setup) -> None:
    response = setup.post("gpt-4o")
    status, kind, message = _error(response)
    assert (status, kind) == (400, "invalid_request_error")
    assert message == (
        "model 'gpt-4o' matches no route (routes: haiku, nokey, rejecting, dead, hole, slow, main); "
        'add a [[route]] whose match covers it to routes.toml, or a catch-all match = "*"'
    )
    assert response.headers["x-should-retry"] == "false"
    assert "x-gateway-provider" not in response.headers  # no provider was involved


def test_a_doubled_v1_is_a_400_that_says_which_base_url_to_set(setup: Setup) -> None:
    for path in ("/v1/v1/messages?beta=true", "/v1/v1/messages/count_tokens?beta=true"):
        response = setup.post("claude-sonnet-5-5", path=path)
        status, kind, message = _error(response)
        assert (status, kind) == (400, "invalid_request_error")
        assert f"set ANTHROPIC_BASE_URL to {setup.gateway.url} (without /v1; Claude Code adds /v1 itself)" in message
        assert response.headers["x-should-retry"] == "false"
    assert setup.anthropic.requests == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind", "fragment"),
    [
        ("POST", "/v1/complete", b"{}", 404, "not_found_error", "no such endpoint: POST /v1/complete"),
        ("GET", "/v1/messages", None, 405, "invalid_request_error", "method GET is not allowed on /v1/messages"),
        ("POST", "/v1/messages", b"{not json", 400, "invalid_request_error", "request body is not valid JSON"),
        ("POST", "/v1/messages", b'{"max_tokens": 8}', 400, "invalid_request_error", "model: field required"),
        ("POST", "/v1/messages", b'{"model": "claude-x", "pad": "' + b"x" * (1024 * 1024) + b'"}',
         413, "request_too_large", "larger than the gateway's limit of 1 MiB (server.max_body_mb in routes.toml)"),
    ],
)
def test_refused_requests_are_not_retried(
    setup: Setup, method: str, path: str, body: bytes | None, status: int, kind: str, fragment: str
) -> None:
    headers = {"x-api-key": CLIENT_KEY, "content-type": "application/json"}  # as every client sends
    response = setup.gateway.request(method, path, content=body, headers=headers)
    got = _error(response)
    assert got[:2] == (status, kind) and fragment in got[2], got
    assert response.headers["x-should-retry"] == "false"
    assert setup.anthropic.requests == []


def test_a_rejected_count_tokens_names_its_provider_and_is_not_retried(setup: Setup) -> None:
    response = setup.post("reject-1", path="/v1/messages/count_tokens")
    status, kind, message = _error(response)
    assert (status, kind) == (501, "api_error")
    assert "provider 'rejecting'" in message
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["x-gateway-provider"] == "rejecting"


# --- errors a retry can fix: left to the client's retry policy --------------------------------


def test_an_unreachable_provider_is_named_and_left_to_retries(setup: Setup) -> None:
    response = setup.post("dead-1")
    status, kind, message = _error(response)
    assert (status, kind) == (502, "api_error")
    assert message.startswith("provider 'dead' is unreachable: cannot connect to http://127.0.0.1:")
    assert "x-should-retry" not in response.headers
    assert response.headers["x-gateway-provider"] == "dead"


def test_a_timeout_is_named_and_left_to_retries(setup: Setup) -> None:
    response = setup.post("hole-1")
    status, kind, message = _error(response)
    assert (status, kind) == (504, "timeout_error")
    assert message.startswith("provider 'hole' timed out")
    assert "x-should-retry" not in response.headers
    assert response.headers["x-gateway-provider"] == "hole"


def test_a_full_queue_is_an_overload_named_and_left_to_retries(setup: Setup) -> None:
    release = threading.Event()

    async def held(request: web.BaseRequest, recorded: object) -> web.StreamResponse:
        await asyncio.to_thread(release.wait, 20)
        return web.json_response({"type": "error", "error": {"type": "api_error", "message": "released"}}, status=500)

    setup.slow.enqueue(Handler(held))
    holder = threading.Thread(target=setup.post, args=("slow-1",), daemon=True)
    holder.start()
    try:
        setup.slow.wait_for(1)  # the provider's only slot is taken now, and no queue is allowed
        response = setup.post("slow-2")
    finally:
        release.set()
        holder.join(10)
    status, kind, message = _error(response)
    assert (status, kind) == (529, "overloaded_error")
    assert "provider 'slow' is at its max_concurrent limit" in message
    assert "x-should-retry" not in response.headers
    assert response.headers["x-gateway-provider"] == "slow"


def test_an_upstream_error_passes_through_unchanged_with_its_provider_named(setup: Setup) -> None:
    setup.anthropic.enqueue(Error(429, message="slow down", retry_after=7))
    response = setup.post("claude-sonnet-5-5")
    assert _error(response) == (429, "rate_limit_error", "slow down")
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-should-retry"] == "true"  # the upstream's own, as Anthropic sends it
    assert response.headers["x-gateway-provider"] == "anthropic"
    assert response.headers["x-gateway-route"] == "main"


# --- who answered, on every answer ----------------------------------------------------------------


def test_answers_name_route_provider_and_upstream_model(setup: Setup) -> None:
    whole = setup.post("claude-haiku-5-5")
    assert whole.status_code == 200
    streamed = setup.post("claude-haiku-5-5", stream=True)
    assert streamed.status_code == 200 and parse_sse(streamed.text)[-1][0] == "message_stop"
    counted = setup.post("claude-haiku-5-5", path="/v1/messages/count_tokens")
    assert counted.status_code == 200 and counted.headers["x-gateway-estimate"] == "true"
    for response in (whole, streamed, counted):
        assert response.headers["x-gateway-route"] == "haiku"
        assert response.headers["x-gateway-provider"] == "zai"
        assert response.headers["x-gateway-model"] == "glm-4.7"
    sonnet = setup.post("claude-sonnet-5-5")
    assert (sonnet.headers["x-gateway-route"], sonnet.headers["x-gateway-provider"]) == ("main", "anthropic")
    assert sonnet.headers["x-gateway-model"] == "claude-sonnet-5-5"


def test_a_model_name_unfit_for_a_header_is_left_out(setup: Setup) -> None:
    response = setup.post("claude-sonnet-\u00e9\u00e9")
    assert response.status_code == 200
    assert response.headers["x-gateway-provider"] == "anthropic"
    assert "x-gateway-model" not in response.headers
