"""The edge checks without a server (gateway.server.edge): heads, Hosts, Origins, content types.

The same checks on real sockets, with a raw client and a lenient upstream: tests/e2e/test_edge.py.
"""

from __future__ import annotations

import pytest
from sanic.compat import Header

from gateway.reload.live import LiveConfig
from gateway.server.edge import Edge, _host_name, malformed
from rules.loader import load_bytes

CONFIG = """version = 1
[server]
{server}
[providers.a]
base_url = "http://127.0.0.1:9"
key = {{ client = true }}
[[route]]
match = "*"
to = "a"
"""


def edge(bind: str = "127.0.0.1", server: str = "") -> tuple[Edge, LiveConfig]:
    live = LiveConfig(load_bytes(CONFIG.format(server=server).encode(), file="e.toml", env={}), "test")
    return Edge(live, bind), live


def check(gate: Edge, host: str | None = "127.0.0.1", *extra: tuple[str, str], method: str = "GET",
          line: bytes = b"GET /health HTTP/1.1") -> str | None:
    """The refusal's reason word, or None when the request passes."""
    pairs = ([("host", host)] if host is not None else []) + list(extra)
    head = b"\r\n".join([line, *(f"{k}: {v}".encode() for k, v in pairs)])
    refused = gate.refusal(head, Header(pairs), method, "/health")
    return None if refused is None else refused[0]


@pytest.mark.parametrize(
    ("value", "name"),
    [("localhost", "localhost"), ("LocalHost:8082", "localhost"), ("[::1]:8082", "::1"), ("[::1]", "::1"),
     ("gateway.lan.", "gateway.lan"), ("10.0.0.5:", "10.0.0.5"), ("a:b:c", None), ("[::1", None),
     ("[::1]x", None), ("host:80x", None), (":8082", None)],
)
def test_host_names(value: str, name: str | None) -> None:
    assert _host_name(value) == name


def test_loopback_bind_answers_loopback_names_and_itself_only() -> None:
    gate, _ = edge("127.0.0.1")
    assert [check(gate, h) for h in ("localhost:1", "127.0.0.1", "[::1]:1")] == [None, None, None]
    assert check(gate, "192.168.1.10") == "host"
    assert check(gate, "evil.example") == "host"


def test_a_named_bind_address_is_answered() -> None:
    gate, _ = edge("My-Box.lan")
    assert check(gate, "my-box.lan:8082") is None
    assert check(gate, "192.168.1.10") == "host"


def test_a_wildcard_bind_answers_any_ip_but_names_only_when_listed() -> None:
    gate, _ = edge("0.0.0.0", 'allowed_hosts = ["gateway.lan"]')
    assert check(gate, "192.168.1.10:8082") is None
    assert check(gate, "[fe80::1%eth0]:8082") is None
    assert check(gate, "gateway.lan") is None
    assert check(gate, "other.lan") == "host"


def test_star_answers_any_host_but_no_origin() -> None:
    gate, _ = edge(server='allowed_hosts = ["*"]')
    assert check(gate, "anything.example:1") is None
    assert check(gate, "anything.example", ("origin", "http://anything.example")) == "origin"


def test_allowed_hosts_follow_a_reload() -> None:
    gate, live = edge()
    assert check(gate, "gateway.lan") == "host"
    live.swap(load_bytes(CONFIG.format(server='allowed_hosts = ["gateway.lan"]').encode(), file="e.toml", env={}))
    assert check(gate, "gateway.lan") is None


def test_remembered_hosts_stay_bounded() -> None:
    gate, _ = edge()
    for n in range(1000):
        check(gate, f"h{n}.example")
    assert len(gate._seen) <= 256


def test_http_1_0_may_leave_host_out_but_1_1_may_not() -> None:
    gate, _ = edge()
    assert check(gate, None, line=b"GET /health HTTP/1.0") is None
    assert check(gate, None) == "head"


def test_post_needs_json() -> None:
    gate, _ = edge()
    line = b"POST /v1/messages HTTP/1.1"
    assert check(gate, "127.0.0.1", ("content-type", "application/json"), method="POST", line=line) is None
    assert check(gate, "127.0.0.1", ("content-type", "text/plain"), method="POST", line=line) == "content_type"
    assert check(gate, "127.0.0.1", method="POST", line=line) == "content_type"


def test_messages_name_the_line_and_never_a_value() -> None:
    assert "header line 2 has a space after 'X-Api-Key' before the colon" in malformed(
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Api-Key : sk-ant-api03-secret-secret")
    secret_name = malformed(b"GET / HTTP/1.1\r\nsk-ant-api03-AbCdEf0123456789xyz\x01: v")
    assert "AbCdEf" not in secret_name and "sk-ant-" in secret_name
    assert malformed(b"GET / HTTP/1.1\r\n: v") == "header line 1 has no name before its colon"
