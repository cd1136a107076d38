"""Foreign errors end to end: fakes answering in Z.AI's and other shapes, the real gateway, the SDK.

What a client sees is Anthropic's shape with the right status (so the official SDK raises the
right class) and the provider's own wording; a Z.AI plan limit says when to come back and
sends the route's next requests elsewhere until then; an Anthropic-shaped error is untouched.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import anthropic
import pytest

from e2e._reload_helpers import wait_for
from fakes import FakeUpstream, Raw
from fakes.config import routes_toml
from fakes.gateway import GatewayProcess, anthropic_client, start_gateway

ZAI_KEY = "zai-key-0123456789abcdef"
CLIENT_KEY = "sk-client-key-0123456789"
USER_HI = [{"role": "user", "content": "hi"}]
LIMIT_TEXT = "Usage limit reached for 5 hour. Your limit will reset at {}"


def in_china(seconds_ahead: float) -> tuple[str, int]:
    """A moment ``seconds_ahead`` from now as Z.AI writes it (UTC+8, whole seconds), and its epoch."""
    moment = int(time.time() + seconds_ahead)
    text = datetime.fromtimestamp(moment, timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    return text, moment


def message_of(error: anthropic.APIStatusError) -> str:
    """The ``error.message`` of the Anthropic-shaped body the SDK parsed."""
    body = error.body
    assert isinstance(body, dict) and body["type"] == "error", body
    return str(body["error"]["message"])


class Setup:
    """One gateway for the module: providers that speak Z.AI's dialect and one that does not."""

    def __init__(self, gateway: GatewayProcess, fakes: dict[str, FakeUpstream]) -> None:
        self.gateway = gateway
        self.fakes = fakes

    def client(self) -> anthropic.Anthropic:
        return anthropic_client(self.gateway, api_key=CLIENT_KEY)

    def create(self, model: str, *, stream: bool = False) -> str:
        """One Messages call through the SDK; the answer's text."""
        client = self.client()
        if stream:
            with client.messages.stream(model=model, max_tokens=16, messages=USER_HI) as events:  # type: ignore[arg-type]
                block = events.get_final_message().content[0]
        else:
            block = client.messages.create(model=model, max_tokens=16, messages=USER_HI).content[0]  # type: ignore[arg-type]
        assert block.type == "text"
        return block.text


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    names = ("zai", "limited", "soon", "billing", "backup", "plain")
    fakes = {name: FakeUpstream(name, api_key=ZAI_KEY if name != "backup" else None).start() for name in names}
    try:
        zai_like = {"preset": "zai", "key": {"env": "ZAI_API_KEY"}}
        config = routes_toml(
            providers={
                "zai": {**zai_like, "base_url": fakes["zai"].url},
                "limited": {**zai_like, "base_url": fakes["limited"].url},
                "soon": {**zai_like, "base_url": fakes["soon"].url},
                "billing": {**zai_like, "base_url": fakes["billing"].url},
                "backup": {"base_url": fakes["backup"].url, "key": {"client": True}},
                "plain": {"base_url": fakes["plain"].url, "key": {"env": "ZAI_API_KEY"}},  # no Z.AI dialect
            },
            routes=[
                {"name": "zai", "match": "zai-*", "to": "zai"},
                {"name": "limited", "match": "limited-*", "to": [{"provider": "limited"}, {"provider": "backup"}]},
                {"name": "soon", "match": "soon-*", "to": [{"provider": "soon"}, {"provider": "backup"}]},
                {"name": "billing", "match": "billing-*", "to": [{"provider": "billing"}, {"provider": "backup"}]},
                {"name": "plain", "match": "*", "to": "plain"},
            ],
        )
        gateway = start_gateway(config, workdir=tmp_path_factory.mktemp("foreign"), env={"ZAI_API_KEY": ZAI_KEY})
        try:
            yield Setup(gateway, fakes)
        finally:
            gateway.stop()
    finally:
        for fake in fakes.values():
            fake.stop()


@pytest.fixture(autouse=True)
def _clean(setup: Setup) -> None:
    for fake in setup.fakes.values():
        fake.clear()
        fake.set_default(None)


# --- each documented shape: the SDK's exception class, the provider's wording ---------------------

DETAIL_422 = {"detail": [{
    "type": "literal_error", "loc": ["body", "messages", 1, "role"],
    "msg": "Input should be 'user' or 'assistant'", "input": "system", "ctx": {"expected": "'user' or 'assistant'"},
}]}
HTML_502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>" + "<p>nginx</p>" * 8000 + "</body></html>"

SHAPES: list[tuple[str, Raw, type[anthropic.APIStatusError], int, str]] = [
    ("fastapi-422", Raw(422, DETAIL_422), anthropic.BadRequestError, 400,
     "messages.1.role: Input should be 'user' or 'assistant' (provider zai)"),
    ("code-403", Raw(403, {"error": {"code": "1220", "message": "You do not have permission to access glm-5"}}),
     anthropic.PermissionDeniedError, 403, "You do not have permission to access glm-5 (provider zai, code 1220)"),
    ("code-401", Raw(401, {"error": {"code": "1000", "message": "Authentication Failed"}}),
     anthropic.AuthenticationError, 401, "Authentication Failed (provider zai, code 1000)"),
    ("code-404", Raw(404, {"error": {"code": "1211", "message": "Unknown Model, please check the model code."}}),
     anthropic.NotFoundError, 404, "Unknown Model, please check the model code. (provider zai, code 1211)"),
    ("digits-1302", Raw(429, {"type": "error", "error": {"type": "1302", "message": "High concurrency usage"}}),
     anthropic.RateLimitError, 429, "High concurrency usage (provider zai, code 1302)"),
    ("code-1309", Raw(429, {"error": {"code": "1309", "message": "Your GLM Coding Plan package has expired"}}),
     anthropic.PaymentRequiredError, 402, "Your GLM Coding Plan package has expired (provider zai, code 1309)"),
    ("html-502", Raw(502, HTML_502, headers={"content-type": "text/html"}),
     anthropic.InternalServerError, 502, "502 Bad Gateway (provider zai)"),
    ("text-500", Raw(500, "Internal Server Error", headers={"content-type": "text/plain"}),
     anthropic.InternalServerError, 500, "Internal Server Error (provider zai)"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("shape", "raw", "raised", "status", "message"), SHAPES, ids=[s[0] for s in SHAPES])
def test_the_sdk_raises_the_right_error_with_the_provider_wording(
    setup: Setup, shape: str, raw: Raw, raised: type[anthropic.APIStatusError], status: int, message: str, stream: bool
) -> None:
    setup.fakes["zai"].enqueue(raw)
    with pytest.raises(anthropic.APIStatusError) as info:
        setup.create("zai-glm", stream=stream)
    error = info.value
    assert type(error) is raised and error.status_code == status
    assert error.body == {"type": "error", "error": {"type": _anthropic_type(status), "message": message}}
    assert error.response.headers["content-type"] == "application/json"
    assert "Traceback" not in error.response.text and len(error.response.content) < 1000
    assert setup.fakes["zai"].last.outcome == "raw"


def _anthropic_type(status: int) -> str:
    return {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
            404: "not_found_error", 429: "rate_limit_error", 500: "api_error", 502: "api_error"}[status]


def test_an_anthropic_shaped_error_goes_through_byte_for_byte(setup: Setup) -> None:
    body = b'{"type":"error",  "error": {"message": "Number of requests exceeded", "type": "rate_limit_error"}}'
    headers = {"request-id": "req_0123", "retry-after": "7", "anthropic-ratelimit-requests-remaining": "0",
               "x-should-retry": "true"}
    setup.fakes["plain"].enqueue(Raw(429, body, headers=headers))
    response = setup.gateway.request("POST", "/v1/messages", json={"model": "other", "max_tokens": 8, "messages": USER_HI},
                                     headers={"x-api-key": CLIENT_KEY})
    assert (response.status_code, response.content) == (429, body)
    assert {k: response.headers[k] for k in headers} == headers


def test_shapes_of_providers_without_the_zai_dialect_take_the_type_of_their_status(setup: Setup) -> None:
    reset, _ = in_china(3600)
    setup.fakes["plain"].enqueue(Raw(429, {"error": {"code": "1308", "message": LIMIT_TEXT.format(reset)}}))
    with pytest.raises(anthropic.RateLimitError) as info:
        setup.create("other")
    # A 429 all the same, but Z.AI's codes mean nothing here: no retry-after is made up.
    assert "retry-after" not in info.value.response.headers
    assert message_of(info.value).endswith("(provider plain, code 1308)")


# --- Z.AI's plan limits: retry-after, and the next target until the reset ---------------------------

def test_a_1308_answers_429_with_retry_after_to_the_reset(setup: Setup) -> None:
    reset, _ = in_china(3600)
    setup.fakes["zai"].enqueue(Raw(429, {"type": "error", "error": {"type": "1308", "message": LIMIT_TEXT.format(reset)}}))
    with pytest.raises(anthropic.RateLimitError) as info:
        setup.create("zai-glm")
    # Whole seconds, counted by the gateway a moment after the fake wrote the time.
    assert 3597 <= int(info.value.response.headers["retry-after"]) <= 3600
    assert message_of(info.value) == f"{LIMIT_TEXT.format(reset)} (provider zai, code 1308)"


def test_after_a_1308_the_next_target_serves_and_the_first_is_not_asked_before_the_reset(setup: Setup) -> None:
    reset, epoch = in_china(3600)
    limited, backup = setup.fakes["limited"], setup.fakes["backup"]
    limited.enqueue(Raw(429, {"error": {"code": "1308", "message": LIMIT_TEXT.format(reset)}}))

    answers = [setup.create("limited-glm", stream=n % 2 == 1) for n in range(4)]

    assert all(text.startswith("[backup]") for text in answers)
    assert len(limited.requests) == 1 and len(backup.requests) == 4
    [cooldown] = [c for c in setup.gateway.health()["resilience"]["cooldowns"] if c["provider"] == "limited"]
    assert cooldown["status"] == 429 and "Z.AI code 1308" in cooldown["reason"]
    assert datetime.fromisoformat(cooldown["until"].replace("Z", "+00:00")).timestamp() == pytest.approx(epoch, abs=1)


def test_the_first_target_is_asked_again_once_the_reset_has_passed(setup: Setup) -> None:
    reset, epoch = in_china(3)
    soon = setup.fakes["soon"]
    soon.enqueue(Raw(429, {"error": {"code": "1308", "message": LIMIT_TEXT.format(reset)}}))
    assert setup.create("soon-glm").startswith("[backup]")
    # Poll: the backup serves until the reset; from then on the first target does again.
    wait_for(lambda: setup.create("soon-glm").startswith("[soon]"), "the first target to serve again", interval=0.1)
    assert time.time() >= epoch and len(soon.requests) == 2


# --- arrears and expired plans: 402, and the credential set aside -------------------------------------

def test_a_1113_is_402_billing_and_the_credential_is_skipped_with_its_reason(setup: Setup) -> None:
    billing, backup = setup.fakes["billing"], setup.fakes["backup"]
    billing.set_default(Raw(429, {"error": {"code": "1113", "message": "Insufficient balance or no resource package."}}))

    with pytest.raises(anthropic.APIStatusError) as info:
        setup.create("billing-glm")  # 402 is not in fallback_on: the client hears it
    assert info.value.status_code == 402
    assert info.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    assert setup.create("billing-glm").startswith("[backup]")
    assert setup.create("billing-glm", stream=True).startswith("[backup]")
    assert len(billing.requests) == 1 and len(backup.requests) == 2

    health = setup.gateway.health()
    [unusable] = [u for u in health["resilience"]["unusable"] if u["provider"] == "billing"]
    assert unusable["credential"] is None
    assert unusable["reason"] == "Z.AI code 1113: Insufficient balance or no resource package."
    assert ZAI_KEY not in json.dumps(health)


def test_a_config_reload_gives_an_unusable_credential_another_chance(
    upstream_factory: Callable[..., FakeUpstream], gateway_factory: Callable[..., GatewayProcess]
) -> None:
    zai, backup = upstream_factory("zai"), upstream_factory("backup")
    zai.enqueue(Raw(429, {"error": {"code": "1309", "message": "Your plan has expired"}}))

    def config(comment: str) -> str:
        return f"# {comment}\n" + routes_toml(
            providers={
                "zai": {"preset": "zai", "base_url": zai.url, "key": {"env": "ZAI_API_KEY"}},
                "backup": {"base_url": backup.url, "key": {"client": True}},
            },
            routes=[{"name": "all", "match": "*", "to": [{"provider": "zai"}, {"provider": "backup"}]}],
        )

    gw = gateway_factory(config("first"), env={"ZAI_API_KEY": ZAI_KEY}, watch=True)
    client = anthropic_client(gw, api_key=CLIENT_KEY)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="glm-5", max_tokens=8, messages=USER_HI)  # type: ignore[arg-type]
    assert info.value.status_code == 402
    assert gw.health()["resilience"]["unusable"] != []

    gw.write_config(config("renewed the plan"))
    wait_for(lambda: gw.health()["config"]["generation"] == 2, "the reload")
    assert gw.health()["resilience"]["unusable"] == []
    answer = client.messages.create(model="glm-5", max_tokens=8, messages=USER_HI)  # type: ignore[arg-type]
    assert answer.content[0].type == "text" and answer.content[0].text.startswith("[zai]")
    assert zai.request_count == 2 and backup.request_count == 0


def test_a_count_tokens_error_is_translated_too(setup: Setup) -> None:
    setup.fakes["plain"].enqueue(Raw(422, DETAIL_422), path="/v1/messages/count_tokens")
    response = setup.gateway.request(
        "POST", "/v1/messages/count_tokens", json={"model": "other", "messages": USER_HI}, headers={"x-api-key": CLIENT_KEY}
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error", "message": "messages.1.role: Input should be 'user' or 'assistant' (provider plain)"
    }

