"""Which headers go upstream and come back (gateway.wire.headers)."""

from __future__ import annotations

from gateway.upstream.credentials import OAUTH_BETA, Credential
from gateway.wire.headers import downstream_headers, upstream_headers
from rules.model import BetaPolicy, KeySource, Provider

CLIENT = [
    ("Host", "127.0.0.1:8082"),
    ("Content-Length", "123"),
    ("Connection", "keep-alive"),
    ("Accept-Encoding", "gzip, br"),
    ("x-api-key", "sk-client-secret"),
    ("Authorization", "Bearer client-token"),
    ("x-gateway-key", "gw-secret"),
    ("Cookie", "a=b"),
    ("anthropic-version", "2023-06-01"),
    ("anthropic-beta", "claude-code-20250219,oauth-2025-04-20"),
    ("User-Agent", "claude-cli/2.1.332"),
    ("x-app", "cli"),
    ("x-claude-code-session-id", "abc"),
]
ENV_KEY = Credential((("x-api-key", "zai-key"),), KeySource("env", "ZAI"), False)


def _provider(**kw: object) -> Provider:
    return Provider("p", "http://up", (KeySource("env", "ZAI"),), **kw)  # type: ignore[arg-type]


def test_client_credentials_gateway_key_and_transport_headers_stay_behind() -> None:
    out = dict(upstream_headers(CLIENT, _provider(), ENV_KEY))
    assert out == {
        "anthropic-version": "2023-06-01",
        "user-agent": "claude-cli/2.1.332",
        "x-app": "cli",
        "x-claude-code-session-id": "abc",
        "anthropic-beta": "claude-code-20250219",  # the oauth beta does not go with an API key
        "accept-encoding": "identity",
        "x-api-key": "zai-key",
    }


def test_oauth_credential_appends_its_beta_to_the_clients() -> None:
    oauth = Credential((("authorization", "Bearer tok"),), KeySource("oauth_file"), True)
    client = [("anthropic-beta", "a-1, b-2")]
    out = dict(upstream_headers(client, _provider(), oauth))
    assert out["anthropic-beta"] == f"a-1,b-2,{OAUTH_BETA}"
    assert out["authorization"] == "Bearer tok"


def test_client_passthrough_keeps_betas_as_sent() -> None:
    passthrough = Credential((("authorization", "Bearer client-token"),), KeySource("client"), None)
    out = dict(upstream_headers(CLIENT, _provider(), passthrough))
    assert out["anthropic-beta"] == "claude-code-20250219,oauth-2025-04-20"
    assert out["authorization"] == "Bearer client-token"
    assert "x-api-key" not in out


def test_beta_policies() -> None:
    drop = dict(upstream_headers(CLIENT, _provider(betas=BetaPolicy("drop")), ENV_KEY))
    assert "anthropic-beta" not in drop
    allow = BetaPolicy("allow", frozenset({"claude-code-20250219"}))
    client = [("anthropic-beta", "claude-code-20250219,context-management-2025-06-27")]
    assert dict(upstream_headers(client, _provider(betas=allow), ENV_KEY))["anthropic-beta"] == "claude-code-20250219"


def test_provider_headers_replace_client_headers_of_the_same_name_but_never_credentials() -> None:
    provider = _provider(headers=(("User-Agent", "my-gateway"), ("x-extra", "1")))
    out = upstream_headers(CLIENT, provider, ENV_KEY)
    names = [name.lower() for name, _ in out]
    assert names.count("user-agent") == 1
    assert ("User-Agent", "my-gateway") in out and ("x-extra", "1") in out
    assert out[-1] == ("x-api-key", "zai-key")  # the credential comes last, from the key source


def test_downstream_keeps_what_clients_need() -> None:
    upstream = [
        ("content-type", "text/event-stream"),
        ("request-id", "req_1"),
        ("retry-after", "30"),
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("content-length", "10"),
        ("transfer-encoding", "chunked"),
        ("connection", "keep-alive"),
        ("set-cookie", "x=y"),
        ("content-encoding", "gzip"),
    ]
    assert downstream_headers(upstream) == {
        "content-type": "text/event-stream",
        "request-id": "req_1",
        "retry-after": "30",
        "anthropic-ratelimit-requests-remaining": "0",
        "content-encoding": "gzip",  # the bytes go as sent: the client needs to know how to read them
    }


def test_headers_a_connection_header_names_stay_behind_both_ways() -> None:
    # RFC 9110 7.6.1: what Connection names was meant for this hop only.
    client = [("Connection", "keep-alive, X-Hop-Secret"), ("X-Hop-Secret", "v"), ("connection", "Anthropic-Beta"),
              ("anthropic-beta", "a-1"), ("x-app", "cli")]
    out = dict(upstream_headers(client, _provider(), ENV_KEY))
    assert "x-hop-secret" not in out and "anthropic-beta" not in out and out["x-app"] == "cli"
    assert out["user-agent"].startswith("claude-gateway/")  # still named, as before
    answer = [("Content-Type", "application/json"), ("Connection", "close, X-Upstream-Hop"),
              ("X-Upstream-Hop", "v"), ("request-id", "req_1")]
    assert downstream_headers(answer) == {"Content-Type": "application/json", "request-id": "req_1"}


def test_plain_connection_values_name_nothing() -> None:
    client = [("Connection", "Keep-Alive"), ("x-app", "cli"), ("keep-alive", "timeout=5")]
    assert dict(upstream_headers(client, _provider(), ENV_KEY))["x-app"] == "cli"
