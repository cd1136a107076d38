"""No secret of the test setup appears in any log line, /health, /metrics, /stats, error or CLI output.

The setup has every kind of secret: an env key (ZAI_API_KEY), a literal `value` key in the
config, Claude Code's OAuth file (access and refresh token), a client key (x-gateway-key) and
the client's own API key passed through with `{ client = true }`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from ops_support import (
    CLIENT_API_KEY,
    CLIENT_KEY,
    OAUTH_TOKEN,
    SECRETS,
    VALUE_KEY,
    ZAI_KEY,
    lan_config,
    leaked,
    message,
    poll,
    run_cli,
)

from fakes import Error
from fakes.gateway import write_claude_credentials

Factory = Callable[..., Any]
ENV = {"ZAI_API_KEY": ZAI_KEY, "GATEWAY_CLIENT_KEY": CLIENT_KEY}


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_in_logs_health_metrics_errors_or_cli_output(
    upstream_factory: Factory, gateway_factory: Factory, tmp_path: Path, log_format: str
) -> None:
    zai = upstream_factory("zai", api_key=ZAI_KEY)
    anthropic = upstream_factory("anthropic", api_key=CLIENT_API_KEY, bearer=OAUTH_TOKEN)
    literal = upstream_factory("literal", api_key=VALUE_KEY)
    home = tmp_path / "home"
    write_claude_credentials(home, OAUTH_TOKEN)
    log_file = tmp_path / "gateway.log"
    config = lan_config(zai_url=zai.url, anthropic_url=anthropic.url, value_url=literal.url)
    gw = gateway_factory(
        config, env=ENV, home=home,
        args=["--host", "0.0.0.0", "--log-format", log_format, "--log-level", "debug", "--log-file", str(log_file)],
    )
    keyed = {"x-gateway-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    client = {**keyed, "x-api-key": CLIENT_API_KEY}
    outputs: list[str] = []

    def post(body: dict[str, Any], headers: dict[str, str], path: str = "/v1/messages") -> None:
        response = httpx.post(gw.url + path, json=body, headers=headers, timeout=30)
        outputs.append(f"{response.status_code} {dict(response.headers)} {response.text}")

    post(message("claude-haiku-5-5"), client)  # zai, env key
    zai.enqueue(Error(500))
    post(message("claude-haiku-5-5", stream=True), client)  # zai 500 -> anthropic, the client's key
    post(message("claude-sonnet-5-5"), keyed)  # no client credentials -> the OAuth token
    post(message("lit-1"), keyed)  # the literal value key
    anthropic.enqueue(Error(401, message="invalid x-api-key"))
    post(message("claude-opus-5-5"), client)  # an upstream error passed through
    post(message("claude-opus-5-5"), {"x-api-key": CLIENT_API_KEY})  # no gateway key
    post(message("claude-opus-5-5"), {**client, "x-gateway-key": CLIENT_KEY[:-1]})  # a wrong one
    post({"model": "claude-opus-5-5"}, client)  # invalid body
    post({**message("claude-opus-5-5")}, client, "/v1/messages/count_tokens")
    zai.stop()
    post(message("claude-haiku-5-5"), keyed)  # zai down; anthropic without client creds -> OAuth
    for path in ("/health", "/metrics", "/stats", "/v1/models"):
        outputs.append(httpx.get(gw.url + path, headers=keyed).text)
    outputs.append(httpx.get(gw.url + "/health").text)
    poll(lambda: log_file.exists() and log_file.read_text().count("request") >= 9 or None, what="request lines")

    served = (len(anthropic.requests), len(literal.requests))
    config_path = str(gw.config_path)
    cli_env = {**ENV, "ANTHROPIC_API_KEY": CLIENT_API_KEY}
    for args in (
        ("explain", "claude-haiku-5-5", "--config", config_path),
        ("explain", "claude-sonnet-5-5", "--config", config_path),
        ("explain", "lit-1", "--config", config_path),
        ("validate", config_path),
        ("doctor", "--config", config_path, "--url", gw.url, "--probe"),
        ("stats", "--config", config_path, "--url", gw.url),
        ("service", "install", "--print", "--config", config_path),
    ):
        done = run_cli(*args, home=home, cwd=tmp_path, env=cli_env)
        outputs.append(f"{args}: {done.code}\n{done.out}\n{done.err}")

    logs = gw.logs() + log_file.read_text()
    everything = "\n".join([logs, *outputs])

    assert leaked(logs) == [], "a secret in the gateway's log"
    assert leaked(everything) == []
    assert served[0] >= 3 and served[1] == 1  # the requests really ran
    assert len(literal.requests) == 2  # and so did doctor's probe
    assert "request id=" in logs or '"event":"request"' in logs
    assert all(secret not in everything for secret in SECRETS)
