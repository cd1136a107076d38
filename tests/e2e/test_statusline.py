"""``gateway statusline``: what Claude Code's status line says about the session it renders.

The real gateway remembers each session's last request (by a digest of Claude Code's
``x-claude-code-session-id``); the command, fed Claude Code's JSON on stdin, names the provider
and upstream model that served it. The plan's usage comes from /health's ``quota`` list, which
another part of the gateway fills: a stand-in /health serves it here.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fakes import closed_port
from fakes.config import routes_toml
from fakes.gateway import GATEWAY_SCRIPT, GatewayProcess, gateway_env
from gateway.ops.sessions import session_digest

Factory = Callable[..., Any]
SESSION = "5d41b1a0-9d51-4c43-9a27-1f0d0c6f7c11"


def statusline(tmp_path: Path, stdin: Mapping[str, Any] | str, *args: str, env: Mapping[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    text = stdin if isinstance(stdin, str) else json.dumps(stdin)
    return subprocess.run([str(GATEWAY_SCRIPT), "statusline", *args], input=text, capture_output=True, text=True,
                          cwd=tmp_path, env=gateway_env(tmp_path, env), timeout=30)


def _ask(gw: GatewayProcess, model: str, session: str | None, **headers: str) -> int:
    extra = {"x-claude-code-session-id": session} if session else {}
    response = gw.request("POST", "/v1/messages?beta=true", headers={"x-api-key": "sk-c", **extra, **headers},
                          json={"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    return response.status_code


@pytest.fixture
def gateway(upstream_factory: Factory, gateway_factory: Factory) -> GatewayProcess:
    zai = upstream_factory("zai")
    anthropic = upstream_factory("anthropic")
    config = routes_toml(
        providers={"zai": {"base_url": zai.url, "key": {"client": True}},
                   "anthropic": {"base_url": anthropic.url, "key": {"client": True}}},
        routes=[{"name": "haiku", "match": "claude-haiku-*", "to": [{"provider": "zai", "model": "glm-4.7"}]},
                {"name": "main", "match": "claude-*", "to": "anthropic"}],
    )
    gw: GatewayProcess = gateway_factory(config)
    return gw


def test_it_names_the_provider_and_model_of_the_sessions_last_request(gateway: GatewayProcess, tmp_path: Path) -> None:
    assert _ask(gateway, "claude-sonnet-5-5", SESSION) == 200
    assert _ask(gateway, "claude-haiku-5-5", SESSION) == 200
    assert _ask(gateway, "claude-sonnet-5-5", "another-session") == 200
    done = statusline(tmp_path, {"session_id": SESSION, "model": {"display_name": "Sonnet"}}, "--url", gateway.url)
    assert (done.returncode, done.stdout, done.stderr) == (0, "via zai glm-4.7\n", "")
    # Claude Code's own environment names the gateway: no --url needed.
    other = statusline(tmp_path, {"session_id": "another-session"}, env={"ANTHROPIC_BASE_URL": gateway.url})
    assert other.stdout == "via anthropic claude-sonnet-5-5\n"


def test_a_session_without_requests_yet_and_a_routing_miss(gateway: GatewayProcess, tmp_path: Path) -> None:
    fresh = statusline(tmp_path, {"session_id": "never-seen"}, "--url", gateway.url)
    assert fresh.stdout == "via gateway: no request yet\n"
    assert _ask(gateway, "gpt-4o", "lost") == 400
    assert statusline(tmp_path, {"session_id": "lost"}, "--url", gateway.url).stdout == "no route for gpt-4o (400)\n"


def test_the_session_endpoint_keeps_no_session_id(gateway: GatewayProcess) -> None:
    assert _ask(gateway, "claude-haiku-5-5", SESSION) == 200
    doc = gateway.request("GET", f"/sessions/{session_digest(SESSION)}").json()
    assert {k: doc[k] for k in ("model", "route", "provider", "upstream_model", "status")} == {
        "model": "claude-haiku-5-5", "route": "haiku", "provider": "zai", "upstream_model": "glm-4.7", "status": 200,
    }
    assert SESSION not in json.dumps(doc)
    missing = gateway.request("GET", f"/sessions/{session_digest('nobody')}")
    assert missing.status_code == 404 and missing.headers["x-should-retry"] == "false"


def test_with_client_keys_it_sends_claude_codes_gateway_key(upstream_factory: Factory, gateway_factory: Factory,
                                                            tmp_path: Path) -> None:
    zai = upstream_factory("zai")
    config = routes_toml(server={"client_keys": [{"env": "GATEWAY_CLIENT_KEY"}]},
                         providers={"zai": {"base_url": zai.url, "key": {"client": True}}},
                         routes=[{"name": "all", "match": "*", "to": "zai"}])
    gw: GatewayProcess = gateway_factory(config, env={"GATEWAY_CLIENT_KEY": "ck-1"})
    assert _ask(gw, "claude-haiku-5-5", SESSION, **{"x-gateway-key": "ck-1"}) == 200
    assert gw.request("GET", f"/sessions/{session_digest(SESSION)}").status_code == 401
    keyed = statusline(tmp_path, {"session_id": SESSION}, "--url", gw.url,
                       env={"ANTHROPIC_CUSTOM_HEADERS": "x-gateway-key: ck-1"})
    assert keyed.stdout == "via zai claude-haiku-5-5\n"
    unkeyed = statusline(tmp_path, {"session_id": SESSION}, "--url", gw.url)
    assert unkeyed.stdout == "gateway: set its client key (ANTHROPIC_CUSTOM_HEADERS)\n"


# --- the plan's usage, from /health's quota list -------------------------------------------------


class _StandIn(BaseHTTPRequestHandler):
    documents: dict[str, Any] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        doc = self.documents.get(self.path)
        body = json.dumps(doc if doc is not None else {"type": "error"}).encode()
        self.send_response(200 if doc is not None else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[tuple[str, dict[str, Any]]]:
    documents: dict[str, Any] = {}
    handler = type("Handler", (_StandIn,), {"documents": documents})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", documents
    server.shutdown()
    server.server_close()


QUOTA = [
    {"provider": "other", "credential": "c0", "windows": {"5h": {"utilization": 0.9}}},
    {"provider": "anthropic", "credential": "c1", "windows": {
        "5h": {"utilization": 0.42, "reset": "2026-01-05T14:00:00Z", "status": "allowed"},
        "7d": {"utilization": 1.0, "reset": "2026-01-09T00:00:00Z", "status": "rejected"},
    }},
]


def test_the_plans_usage_is_shown_when_health_has_it(stand_in: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, documents = stand_in
    documents["/health"] = {"version": "x", "config": {}, "quota": QUOTA}
    documents[f"/sessions/{session_digest(SESSION)}"] = {
        "provider": "anthropic", "upstream_model": "claude-opus-5-5", "status": 200, "model": "claude-opus-5-5"}
    done = statusline(tmp_path, {"session_id": SESSION}, "--url", url)
    assert done.stdout == "via anthropic claude-opus-5-5 · plan 5h 42% 7d 100%!\n"
    # GLM answered this one: the plan's usage is still the Claude plan's (the only other entry).
    documents[f"/sessions/{session_digest(SESSION)}"] = {"provider": "zai", "upstream_model": "glm-4.7", "status": 200}
    documents["/health"] = {"version": "x", "config": {}, "quota": QUOTA[1:]}
    assert statusline(tmp_path, {"session_id": SESSION}, "--url", url).stdout == "via zai glm-4.7 · plan 5h 42% 7d 100%!\n"
    # No quota list (this branch's gateway): nothing said about it.
    documents["/health"] = {"version": "x", "config": {}}
    assert statusline(tmp_path, {"session_id": SESSION}, "--url", url).stdout == "via zai glm-4.7\n"


@pytest.mark.parametrize("stdin", ["", "not json", "[1]", json.dumps({"session_id": 7})])
def test_whatever_goes_wrong_it_prints_one_short_line_and_exits_0(tmp_path: Path, stdin: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    done = statusline(tmp_path, stdin, "--url", url)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"gateway not answering at {url}\n", "")


def test_not_a_gateway(stand_in: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, _ = stand_in
    done = statusline(tmp_path, {"session_id": SESSION}, "--url", url)
    assert (done.returncode, done.stdout) == (0, f"no gateway at {url}\n")
