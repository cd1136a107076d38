"""Client keys: constant-time checks per config generation, 401s, never forwarded; LAN /health."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from ops_support import CLIENT_API_KEY, CLIENT_KEY, ZAI_KEY, lan_config, message

from gateway.client_keys import check_sources, resolve_keys, startup_problems
from gateway.reload.live import LiveConfig
from gateway.server.access import AccessControl
from rules.errors import ConfigError
from rules.loader import load_bytes
from rules.model import KeySource, RuleSet, ServerConfig

ENV = {"GATEWAY_CLIENT_KEY": CLIENT_KEY, "OTHER_KEY": "second-key-0123456789"}


def ruleset(client_keys: str = "") -> RuleSet:
    server = f"[server]\nclient_keys = {client_keys}\n" if client_keys else ""
    text = f"""version = 1
{server}
[providers.a]
base_url = "http://127.0.0.1:9"
key = {{ client = true }}

[[route]]
name = "all"
match = "*"
to = "a"
"""
    return load_bytes(text.encode(), file="routes.toml", env=ENV)


def test_env_and_value_keys_are_accepted_and_nothing_else() -> None:
    keys = resolve_keys((KeySource("env", "GATEWAY_CLIENT_KEY"), KeySource("value", "literal-key-abcdef")), ENV)

    assert keys.required
    assert keys.accepts(CLIENT_KEY)
    assert keys.accepts("literal-key-abcdef")
    assert not keys.accepts(CLIENT_KEY + "x")
    assert not keys.accepts("")
    assert not keys.accepts(None)
    assert not keys.accepts("literal-key-abcde")


def test_no_client_keys_means_every_request_is_allowed() -> None:
    keys = resolve_keys((), ENV)

    assert not keys.required
    assert keys.accepts(None)


def test_an_unset_variable_accepts_nobody_and_says_which() -> None:
    keys = resolve_keys((KeySource("env", "MISSING_KEY"),), ENV)

    assert keys.required and keys.keys == ()
    assert not keys.accepts("")
    assert keys.problems == (
        "server.client_keys[0]: environment variable MISSING_KEY is not set, so this key accepts nobody; "
        "set it in the gateway's environment (or its .env file)",
    )
    assert startup_problems(RuleSet({}, (), ServerConfig(client_keys=(KeySource("env", "MISSING_KEY"),))), ENV)[-1] == (
        "server.client_keys: no client key is usable: every request will be refused with 401"
    )


@pytest.mark.parametrize("kind", ["oauth_file", "client"])
def test_oauth_file_and_client_are_refused_as_client_keys(kind: str) -> None:
    sources = (KeySource("env", "GATEWAY_CLIENT_KEY"), KeySource(kind))  # type: ignore[arg-type]

    with pytest.raises(ConfigError) as error:
        check_sources(sources, file="routes.toml")
    keys = resolve_keys(sources, ENV)

    assert error.value.problems[0].path == "server.client_keys[1]"
    assert error.value.problems[0].file == "routes.toml"
    assert f"{kind} cannot be a client key" in str(error.value)
    assert 'use { env = "GATEWAY_CLIENT_KEY" }' in str(error.value)
    assert not keys.accepts(CLIENT_KEY)  # fail closed: even the good key is not accepted


def test_keys_are_resolved_once_per_generation_and_again_after_a_reload() -> None:
    live = LiveConfig(ruleset('[{ env = "GATEWAY_CLIENT_KEY" }]'), "test")
    env = dict(ENV)
    gate = AccessControl(live, env, loopback=True)

    first = gate.current()
    env["GATEWAY_CLIENT_KEY"] = "changed-without-reload-0000"
    same = gate.current()
    live.swap(ruleset('[{ env = "OTHER_KEY" }]'))
    after = gate.current()

    assert same is first  # cached: no per-request resolution
    assert gate.allows({"x-gateway-key": "second-key-0123456789"})
    assert not gate.allows({"x-gateway-key": CLIENT_KEY})
    assert after.generation == 2


def test_health_details_only_for_loopback_or_a_valid_key() -> None:
    live = LiveConfig(ruleset('[{ env = "GATEWAY_CLIENT_KEY" }]'), "test")
    lan = AccessControl(live, ENV, loopback=False)
    local = AccessControl(live, ENV, loopback=True)
    open_lan = AccessControl(LiveConfig(ruleset(), "test"), ENV, loopback=False)

    assert local.shows_details({})
    assert lan.shows_details({"x-gateway-key": CLIENT_KEY})
    assert not lan.shows_details({})
    assert not lan.shows_details({"x-gateway-key": "wrong"})
    assert not open_lan.shows_details({})  # a LAN bind without client keys shows nobody the details


def test_refusal_messages_never_contain_a_key() -> None:
    gate = AccessControl(LiveConfig(ruleset('[{ env = "GATEWAY_CLIENT_KEY" }]'), "t"), ENV, loopback=False)

    missing = gate.refusal({})
    wrong = gate.refusal({"x-gateway-key": "guess-123"})

    assert "x-gateway-key" in missing and "ANTHROPIC_CUSTOM_HEADERS" in missing
    assert wrong == "the x-gateway-key header does not hold a key this gateway accepts"
    assert CLIENT_KEY not in missing + wrong and "guess-123" not in wrong
    assert gate.refusal_reason({}) == "missing"
    assert gate.refusal_reason({"x-gateway-key": "guess-123"}) == "invalid"


# --- end to end: a LAN-bound gateway ----------------------------------------------------------------
# In process (fakes.inprocess) where the test is about what is served; a `gateway serve` process
# where it is about the startup banner or counts metrics (process-global in the test process).

Factory = Callable[..., Any]
LAN_ENV = {"ZAI_API_KEY": ZAI_KEY, "GATEWAY_CLIENT_KEY": CLIENT_KEY}


def lan_upstreams(upstream_factory: Factory, *, client_keys: bool = True) -> tuple[str, Any]:
    """The config of a LAN gateway in front of two fakes, and the Anthropic fake."""
    zai = upstream_factory("zai", api_key=ZAI_KEY)
    anthropic = upstream_factory("anthropic", api_key=CLIENT_API_KEY)
    config = lan_config(zai_url=zai.url, anthropic_url=anthropic.url, value_url=anthropic.url, client_keys=client_keys)
    return config, anthropic


def lan_gateway(upstream_factory: Factory, gateway_factory: Factory, *, client_keys: bool = True,
                watch: bool = False) -> tuple[Any, Any]:
    config, anthropic = lan_upstreams(upstream_factory, client_keys=client_keys)
    gw = gateway_factory(
        config,
        env=LAN_ENV,
        args=["--host", "0.0.0.0"],  # after the fixture's --host 127.0.0.1: this one wins
        watch=watch,
    )
    return gw, anthropic


def lan_inprocess_gateway(upstream_factory: Factory, inprocess_gateway: Factory) -> tuple[Any, Any]:
    config, anthropic = lan_upstreams(upstream_factory)
    return inprocess_gateway(config, env=LAN_ENV, host="0.0.0.0"), anthropic


def test_lan_gateway_refuses_requests_without_the_key(upstream_factory: Factory, inprocess_gateway: Factory) -> None:
    gw, anthropic = lan_inprocess_gateway(upstream_factory, inprocess_gateway)
    client_auth = {"x-api-key": CLIENT_API_KEY, "anthropic-version": "2023-06-01"}

    missing = gw.request("POST", "/v1/messages", json=message("claude-sonnet-5-5"), headers=client_auth)
    wrong = gw.request("POST", "/v1/messages", json=message("claude-sonnet-5-5"),
                       headers={**client_auth, "x-gateway-key": "not-the-key"})
    models = gw.request("GET", "/v1/models")
    metrics = gw.request("GET", "/metrics")

    for response in (missing, wrong, models, metrics):
        assert response.status_code == 401
        assert response.json()["type"] == "error"
        assert response.json()["error"]["type"] == "authentication_error"
    assert "x-gateway-key" in missing.json()["error"]["message"]
    assert anthropic.requests == []  # nothing reached the upstream


def test_lan_gateway_serves_with_the_key_and_never_forwards_it(upstream_factory: Factory, inprocess_gateway: Factory) -> None:
    gw, anthropic = lan_inprocess_gateway(upstream_factory, inprocess_gateway)
    headers = {"x-api-key": CLIENT_API_KEY, "anthropic-version": "2023-06-01", "x-gateway-key": CLIENT_KEY}

    plain = gw.request("POST", "/v1/messages", json=message("claude-sonnet-5-5"), headers=headers)
    streamed = gw.request("POST", "/v1/messages?beta=true", json=message("claude-sonnet-5-5", stream=True), headers=headers)

    assert plain.status_code == 200 and plain.json()["type"] == "message"
    assert streamed.status_code == 200 and "message_stop" in streamed.text
    assert len(anthropic.requests) == 2
    for seen in anthropic.requests:
        assert "x-gateway-key" not in seen.headers
        assert not seen.contains(CLIENT_KEY)
        assert seen.credentials == [("x-api-key", CLIENT_API_KEY)]


def test_lan_health_hides_providers_from_callers_without_a_key(upstream_factory: Factory, inprocess_gateway: Factory) -> None:
    gw, _ = lan_inprocess_gateway(upstream_factory, inprocess_gateway)

    anonymous = gw.request("GET", "/health").json()
    keyed = gw.request("GET", "/health", headers={"x-gateway-key": CLIENT_KEY}).json()

    assert anonymous["status"] == "ok" and "config" in anonymous
    assert "providers" not in anonymous and "routes" not in anonymous and "tiers" not in anonymous
    assert set(keyed["providers"]) == {"zai", "anthropic", "literal"}
    assert "routes" in keyed


def test_lan_health_gives_a_reload_error_by_file_and_line_only_without_a_key(
    upstream_factory: Factory, gateway_factory: Factory
) -> None:
    gw, _ = lan_gateway(upstream_factory, gateway_factory, watch=True)
    assert gw.config_path is not None
    broken = gw.config_path.read_text().replace('to = "anthropic"', 'to = "anthropicc"')
    gw.write_config(broken + '\n[providers.typo]\nbase_url = "https://u:hunter2pass@example.com/?key=zz9secret"\nkey = "sk-ant-api03-pastedPASTEDpasted0123456789"\n')
    deadline = time.monotonic() + 10
    while (anonymous := gw.request("GET", "/health").json())["config"]["last_error"] is None:
        assert time.monotonic() < deadline, "the reload error never reached /health"
    keyed = gw.request("GET", "/health", headers={"x-gateway-key": CLIENT_KEY}).json()

    error = anonymous["config"]["last_error"]
    assert error["file"] == str(gw.config_path) and isinstance(error["line"], int) and error["path"] is None
    assert "anthropicc" not in json.dumps(anonymous) and "typo" not in json.dumps(anonymous)
    assert "reload failed" in error["message"]
    assert "providers.typo.key" in keyed["config"]["last_error"]["message"]  # the full text, with a key
    for text in (json.dumps(anonymous), json.dumps(keyed)):
        assert "hunter2pass" not in text and "zz9secret" not in text and "pastedPASTED" not in text


def test_lan_bind_without_client_keys_warns_prominently(upstream_factory: Factory, gateway_factory: Factory) -> None:
    gw, _ = lan_gateway(upstream_factory, gateway_factory, client_keys=False)

    logs = gw.logs()
    health = gw.request("GET", "/health").json()

    assert "SECURITY WARNING: listening on 0.0.0.0 WITHOUT server.client_keys" in logs
    assert "Anyone who can reach this port can use the configured providers" in logs
    assert "providers" not in health  # nobody can hold a key, so nobody sees the details


def test_loopback_gateway_needs_no_key_and_shows_health(upstream_factory: Factory, gateway_factory: Factory) -> None:
    anthropic = upstream_factory("anthropic")
    config = lan_config(zai_url=anthropic.url, anthropic_url=anthropic.url, value_url=anthropic.url, client_keys=False)
    gw = gateway_factory(config, env={"ZAI_API_KEY": ZAI_KEY})

    answer = gw.request("POST", "/v1/messages", json=message("claude-sonnet-5-5"),
                        headers={"x-api-key": CLIENT_API_KEY, "anthropic-version": "2023-06-01"})

    assert answer.status_code == 200
    assert "providers" in gw.health()
    assert "SECURITY WARNING" not in gw.logs()


def test_refusals_are_logged_and_counted_without_the_key(upstream_factory: Factory, gateway_factory: Factory) -> None:
    gw, _ = lan_gateway(upstream_factory, gateway_factory)

    gw.request("POST", "/v1/messages", json=message("m"))
    gw.request("POST", "/v1/messages", json=message("m"), headers={"x-gateway-key": "wrong-guess-999"})
    metrics = httpx.get(gw.url + "/metrics", headers={"x-gateway-key": CLIENT_KEY}).text
    logs = gw.wait_for_log("reason=invalid_client_key")

    assert 'gateway_client_key_refusals_total{reason="missing"} 1.0' in metrics
    assert 'gateway_client_key_refusals_total{reason="invalid"} 1.0' in metrics
    assert "refused client=127.0.0.1 POST /v1/messages status=401 reason=missing_client_key" in logs
    assert "wrong-guess-999" not in logs


def test_bearer_key_only_for_the_gateways_own_endpoints() -> None:
    gate = AccessControl(LiveConfig(ruleset('[{ env = "GATEWAY_CLIENT_KEY" }]'), "t"), ENV, loopback=False)
    bearer = {"authorization": f"Bearer {CLIENT_KEY}"}

    assert gate.allows(bearer, bearer=True)
    assert not gate.allows(bearer)  # on proxied requests Authorization is the upstream credential
    assert not gate.allows({"authorization": "Bearer wrong"}, bearer=True)
    assert not gate.allows({"authorization": CLIENT_KEY}, bearer=True)


def test_prometheus_can_scrape_with_a_bearer_key(upstream_factory: Factory, inprocess_gateway: Factory) -> None:
    gw, anthropic = lan_inprocess_gateway(upstream_factory, inprocess_gateway)
    bearer = {"authorization": f"Bearer {CLIENT_KEY}"}

    metrics = gw.request("GET", "/metrics", headers=bearer)
    stats = gw.request("GET", "/stats", headers=bearer)
    proxied = gw.request("POST", "/v1/messages", json=message("claude-sonnet-5-5"),
                         headers={**bearer, "anthropic-version": "2023-06-01"})

    assert metrics.status_code == 200 and "gateway_requests_total" in metrics.text
    assert stats.status_code == 200 and "totals" in stats.json()
    assert proxied.status_code == 401
    assert anthropic.requests == []
