"""The door, end to end on real sockets: what the gateway refuses before it looks at a request.

A raw-HTTP client sends heads byte for byte (an HTTP library would trim or refuse them), and a
lenient upstream with no parser of its own records every head it receives, so "nothing reached
the upstream" and "only these bytes reached it" are facts, not assumptions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from fakes.claude_code import load_all
from fakes.config import routes_toml
from fakes.gateway import GatewayProcess, anthropic_client, start_gateway
from fakes.raw import RawReply, RawUpstream, message_answer, raw_request

BODY = b'{"model":"claude-haiku-5-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'


def request(host: str = "127.0.0.1", *, head: bytes = b"", target: bytes = b"/v1/messages",
            content_type: bytes = b"application/json", body: bytes = BODY) -> bytes:
    """A POST /v1/messages as bytes: Host, content type, the extra ``head`` lines, the body."""
    lines = b"POST " + target + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
    if content_type:
        lines += b"Content-Type: " + content_type + b"\r\n"
    return lines + head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def get(path: str, host: str, extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode() + extra + b"\r\n"


def gateway_for(upstream: RawUpstream, tmp: pytest.TempPathFactory, server: dict[str, object] | None = None,
                args: tuple[str, ...] = ()) -> GatewayProcess:
    config = routes_toml(
        providers={"up": {"base_url": upstream.url, "key": {"env": "UP_KEY"}}},
        routes=[{"match": "*", "to": "up"}],
        server=server,
    )
    return start_gateway(config, workdir=tmp.mktemp("edge"), env={"UP_KEY": "sk-up-key-0123456789", "GATEWAY_CLIENT_KEY": "gw-key-0123456789abcdef"}, args=args)


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawUpstream]:
    with RawUpstream() as raw:
        yield raw


@pytest.fixture(scope="module")
def gateway(upstream: RawUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = gateway_for(upstream, tmp_path_factory, server={"allowed_hosts": ["gateway.lan"]})
    yield process
    process.stop()


@pytest.fixture
def fresh(upstream: RawUpstream) -> RawUpstream:
    upstream.requests.clear()
    return upstream


def refused(reply: RawReply, status: int, error_type: str, *words: str) -> None:
    """An Anthropic-shaped error with this status and type, whose message holds ``words``, that
    tells the client not to retry (the same request is refused the same way again)."""
    assert reply.status == status, reply.body
    assert reply.headers.get("x-should-retry") == "false", reply.headers
    error = reply.json["error"]
    assert reply.json["type"] == "error" and error["type"] == error_type
    for word in words:
        assert word in error["message"], error["message"]


# --- strict heads -------------------------------------------------------------------------

MALFORMED = {
    "space before the colon": (b"X-Api-Key : sk-smuggled-0123456789\r\n", "a space after 'X-Api-Key' before the colon"),
    "tab before the colon": (b"Transfer-Encoding\t: chunked\r\n", "a tab after 'Transfer-Encoding' before the colon"),
    "a second Host, spaced": (b"Host : evil.example\r\n", "a space after 'Host' before the colon"),
    "folded line with a colon": (b"X-App: cli\r\n  x-api-key: sk-folded-0123456789\r\n", "obsolete folded continuation"),
    "folded line without a colon": (b"X-App: cli\r\n\tcontinued\r\n", "obsolete folded continuation"),
    "NUL in a value": (b"X-App: c\x00li\r\n", "the value of header 'X-App' holds a control character"),
    "bare CR in a value": (b"X-App: c\rX-Api-Key: sk-cr-0123456789\r\n", "the value of header 'X-App' holds a control character"),
    "bare LF in a value": (b"X-App: c\nX-Api-Key: sk-lf-0123456789\r\n", "the value of header 'X-App' holds a control character"),
    "DEL in a name": (b"X-\x7fApp: cli\r\n", "byte 0x7f after 'X-' in the name"),
    "not UTF-8": (b"X-App: \xff\xfe\r\n", "neither ASCII nor UTF-8"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_heads_are_400_and_reach_no_upstream(gateway: GatewayProcess, fresh: RawUpstream, case: str) -> None:
    line, words = MALFORMED[case]
    reply = raw_request(gateway.port, request(head=line))
    refused(reply, 400, "invalid_request_error", "malformed request head", words)
    assert b"sk-" not in reply.body  # a value is never echoed
    assert reply.headers["connection"] == "close"  # the body's framing is in doubt: no next request
    assert fresh.requests == []  # the gateway answered first: had it forwarded, the upstream would have it


def test_control_characters_in_the_url_are_400(gateway: GatewayProcess, fresh: RawUpstream) -> None:
    reply = raw_request(gateway.port, request(target=b"/v1/messages?beta=\x01true"))
    refused(reply, 400, "invalid_request_error", "request line")
    assert fresh.requests == []


def test_what_reaches_the_upstream_is_well_formed_and_connection_names_stay_behind(
    gateway: GatewayProcess, fresh: RawUpstream
) -> None:
    head = b"Connection: keep-alive, X-Hop-Secret\r\nX-Hop-Secret: only-for-the-gateway\r\nX-App: cli\r\n"
    reply = raw_request(gateway.port, request(head=head))
    assert reply.status == 200, reply.body
    [sent] = fresh.requests
    names = [n.lower() for n in sent.header_names()]
    assert b"x-hop-secret" not in names and b"only-for-the-gateway" not in sent.head
    assert all(n == n.strip() and b" " not in n for n in names) and b"x-app" in names
    assert names.count(b"host") == 1


def test_connection_names_from_the_upstream_stay_behind(upstream: RawUpstream, tmp_path_factory: pytest.TempPathFactory) -> None:
    with RawUpstream(message_answer(headers=b"Connection: X-Upstream-Hop\r\nX-Upstream-Hop: v\r\nrequest-id: req_1\r\n")) as up:
        process = gateway_for(up, tmp_path_factory)
        try:
            reply = raw_request(process.port, request())
        finally:
            process.stop()
    assert reply.status == 200 and reply.headers["request-id"] == "req_1"
    assert "x-upstream-hop" not in reply.headers


def test_oversized_heads_are_431_and_long_urls_414(gateway: GatewayProcess, fresh: RawUpstream) -> None:
    reply = raw_request(gateway.port, request(head=b"X-Big: " + b"a" * 9000 + b"\r\n"))
    refused(reply, 431, "request_too_large", "request headers are larger than the gateway's limit of 8,192 bytes")
    reply = raw_request(gateway.port, request(target=b"/v1/messages?q=" + b"a" * 9000))
    refused(reply, 414, "request_too_large", "request line (method and URL)", "shorten the URL")
    assert fresh.requests == []


# --- Host and browsers ----------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:{port}", "localhost", "LOCALHOST:{port}", "[::1]:{port}",
                                  "gateway.lan", "Gateway.LAN.:{port}"])
def test_loopback_names_the_bind_address_and_allowed_hosts_are_served(
    gateway: GatewayProcess, fresh: RawUpstream, host: str
) -> None:
    reply = raw_request(gateway.port, request(host.format(port=gateway.port)))
    assert reply.status == 200, reply.body


@pytest.mark.parametrize("path", ["/v1/messages", "/health"])
def test_a_foreign_host_is_403_health_included(gateway: GatewayProcess, fresh: RawUpstream, path: str) -> None:
    # What a page that rebound its own DNS name to 127.0.0.1 sends.
    data = request("attacker.example:8082") if path == "/v1/messages" else get(path, "attacker.example:8082")
    reply = raw_request(gateway.port, data)
    refused(reply, 403, "permission_error", "does not answer to Host 'attacker.example:8082'", "allowed_hosts",
            "localhost, 127.0.0.1, [::1]")
    assert "providers" not in reply.body.decode()
    assert fresh.requests == []


@pytest.mark.parametrize("host", ["", "192.168.1.10:8082", "a:b:c"])
def test_missing_or_malformed_hosts_are_refused(gateway: GatewayProcess, host: str) -> None:
    data = request().replace(b"Host: 127.0.0.1\r\n", f"Host: {host}\r\n".encode() if host != "" else b"")
    reply = raw_request(gateway.port, data)
    assert reply.status in (400, 403), reply.body
    if host == "":
        refused(reply, 400, "invalid_request_error", "needs a Host header")


def test_two_hosts_are_400(gateway: GatewayProcess) -> None:
    reply = raw_request(gateway.port, request(head=b"Host: 127.0.0.1\r\n"))
    refused(reply, 400, "invalid_request_error", "more than one Host header")


@pytest.mark.parametrize("origin", ["https://attacker.example", "null", "http://localhost:3000"])
def test_a_browser_origin_is_403(gateway: GatewayProcess, fresh: RawUpstream, origin: str) -> None:
    reply = raw_request(gateway.port, request(head=f"Origin: {origin}\r\n".encode()))
    refused(reply, 403, "permission_error", "requests from web pages are refused", "allowed_hosts")
    reply = raw_request(gateway.port, get("/health", "127.0.0.1", f"Origin: {origin}\r\n".encode()))
    refused(reply, 403, "permission_error")
    assert fresh.requests == []


def test_an_origin_on_an_allowed_host_is_served(gateway: GatewayProcess, fresh: RawUpstream) -> None:
    reply = raw_request(gateway.port, request("gateway.lan", head=b"Origin: http://gateway.lan:8080\r\n"))
    assert reply.status == 200, reply.body


@pytest.mark.parametrize("content_type", [b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x", b""])
def test_a_post_that_is_not_json_is_400(gateway: GatewayProcess, fresh: RawUpstream, content_type: bytes) -> None:
    # A page may send these to any site without a preflight; Claude Code never does.
    reply = raw_request(gateway.port, request(content_type=content_type))
    refused(reply, 400, "invalid_request_error", "needs content-type: application/json")
    assert fresh.requests == []


@pytest.mark.parametrize("content_type", [b"application/json; charset=utf-8", b"Application/JSON"])
def test_json_with_parameters_or_another_case_is_served(gateway: GatewayProcess, fresh: RawUpstream, content_type: bytes) -> None:
    assert raw_request(gateway.port, request(content_type=content_type)).status == 200


# --- the clients that must keep working ------------------------------------------------------

def test_claude_codes_captured_requests_the_sdk_and_curl_pass(gateway: GatewayProcess, fresh: RawUpstream) -> None:
    import subprocess

    with httpx.Client(timeout=10) as client:
        for captured in load_all():
            if captured.method == "POST":
                response = captured.send(client, gateway.url)
                assert response.status_code == 200, (captured.name, response.text)
    sdk = anthropic_client(gateway, api_key="sk-client")
    assert sdk.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}]).content
    curl = subprocess.run(
        ["curl", "-sS", f"{gateway.url}/v1/messages", "-H", "content-type: application/json",
         "-H", "anthropic-version: 2023-06-01", "-d", BODY.decode()],
        capture_output=True, text=True, timeout=30, check=True,
    )
    assert json.loads(curl.stdout)["type"] == "message"


def test_a_lan_bind_serves_any_ip_host_and_only_listed_names(
    upstream: RawUpstream, tmp_path_factory: pytest.TempPathFactory
) -> None:
    process = gateway_for(upstream, tmp_path_factory, server={"client_keys": [{"env": "GATEWAY_CLIENT_KEY"}]},
                          args=("--host", "0.0.0.0"))
    try:
        def keyed(host: str) -> bytes:
            return request(host, head=b"x-gateway-key: gw-key-0123456789abcdef\r\n")

        assert raw_request(process.port, keyed(f"192.168.1.10:{process.port}")).status == 200
        assert raw_request(process.port, keyed(f"[fe80::1%eth0]:{process.port}")).status == 200
        refused(raw_request(process.port, keyed("my-gateway.lan")), 403, "permission_error", "any IP address of this machine")
        # /health's keyless view on a LAN bind, reached by the machine's address.
        health = raw_request(process.port, get("/health", f"10.0.0.5:{process.port}"))
        assert health.status == 200 and "providers" not in health.json
    finally:
        process.stop()
