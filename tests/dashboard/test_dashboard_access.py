"""Who sees the dashboard: this machine by default, other machines with a client key (HTTP Basic
works in a browser), nobody else; and its JSON never holds a key."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from dashboard_support import CLIENT_API_KEY, ENV, GATEWAY_KEY, dashboard_config, lan_address, leaked

from fakes import Reply, unified_headers

Factory = Callable[..., Any]
PATHS = ("/", "/dashboard.js", "/dashboard.css", "/dashboard.json")
LAN = lan_address()
needs_lan = pytest.mark.skipif(LAN is None, reason="this machine has no non-loopback IPv4 address to connect from")


def basic(password: str, user: str = "me") -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_this_machine_gets_the_page_its_files_and_json_without_a_key(upstream_factory: Factory,
                                                                     gateway_factory: Factory) -> None:
    anthropic = upstream_factory("anthropic", api_key=CLIENT_API_KEY)
    gw = gateway_factory(dashboard_config(anthropic.url, anthropic.url, client_keys=True), env=ENV)
    gw.request("POST", "/v1/messages", json={"model": "claude-sonnet-5-5", "max_tokens": 8,
                                             "messages": [{"role": "user", "content": "hi"}]},
               headers={"x-api-key": CLIENT_API_KEY, "anthropic-version": "2023-06-01", "x-gateway-key": GATEWAY_KEY})

    answers = {path: gw.request("GET", path) for path in PATHS}
    assert {path: a.status_code for path, a in answers.items()} == dict.fromkeys(PATHS, 200)
    assert answers["/"].headers["content-type"] == "text/html; charset=utf-8"
    assert answers["/dashboard.js"].headers["content-type"].startswith("text/javascript")
    csp = answers["/"].headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert answers["/dashboard.json"].headers["cache-control"] == "no-store"
    doc = answers["/dashboard.json"].json()
    assert [p["name"] for p in doc["providers"]] == ["anthropic", "zai", "literal"]
    assert [r["name"] for r in doc["routes"]] == ["subagents", "default"]
    assert doc["quota"] == []  # no plan windows in /health: none on the page
    for path, answer in answers.items():
        assert leaked(answer.text) == [], path
    # The page's files come from the package: no address of anything elsewhere in them.
    for path in ("/", "/dashboard.js", "/dashboard.css"):
        text = answers[path].text.replace('"http://www.w3.org/2000/svg"', "")  # SVG's namespace: a name, not a fetch
        assert re.findall(r"""["'`(]\s*(?:https?:)?//""", text) == [], path


def test_the_plans_windows_an_answer_reported_reach_the_page(upstream_factory: Factory, gateway_factory: Factory) -> None:
    now = time.time()
    windows = {"5h": (0.42, now + 3600), "7d": (0.87, now + 86400)}
    anthropic = upstream_factory("anthropic", api_key=CLIENT_API_KEY)
    anthropic.set_default(Reply(headers=unified_headers(reset=now + 3600, claim="seven_day", windows=windows)))
    gw = gateway_factory(dashboard_config(anthropic.url, anthropic.url), env=ENV)
    gw.request("POST", "/v1/messages", json={"model": "claude-sonnet-5-5", "max_tokens": 8,
                                             "messages": [{"role": "user", "content": "hi"}]},
               headers={"x-api-key": CLIENT_API_KEY, "anthropic-version": "2023-06-01"})

    doc = gw.request("GET", "/dashboard.json").json()
    (entry,) = doc["quota"]
    assert entry["provider"] == "anthropic"
    assert {w["name"]: w["utilization"] for w in entry["windows"]} == {"5h": 0.42, "7d": 0.87}
    assert leaked(gw.request("GET", "/dashboard.json").text) == []


def test_a_host_other_than_an_address_or_localhost_is_refused(upstream_factory: Factory,
                                                              gateway_factory: Factory) -> None:
    anthropic = upstream_factory("anthropic")
    gw = gateway_factory(dashboard_config(anthropic.url, anthropic.url), env=ENV)

    rebound = gw.request("GET", "/dashboard.json", headers={"host": f"attacker.example:{gw.port}"})
    named = gw.request("GET", "/dashboard.json", headers={"host": f"localhost:{gw.port}"})

    assert rebound.status_code == 403  # at the edge, as for every path
    assert "does not answer to Host 'attacker.example" in rebound.json()["error"]["message"]
    assert named.status_code == 200
    gw.wait_for_log("refused client=127.0.0.1 GET /dashboard.json status=403 reason=host")


@needs_lan
def test_another_machine_needs_a_key_and_basic_auth_works(upstream_factory: Factory, gateway_factory: Factory) -> None:
    anthropic = upstream_factory("anthropic")
    gw = gateway_factory(dashboard_config(anthropic.url, anthropic.url, client_keys=True), env=ENV,
                         args=["--host", "0.0.0.0"])
    remote = f"http://{LAN}:{gw.port}"

    for path in PATHS:
        answer = httpx.get(remote + path, timeout=10)
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"].startswith('Basic realm="claude-gateway dashboard"')
        assert "sign in with any user name and the key as the password" in answer.json()["error"]["message"]
    assert httpx.get(remote + "/", headers=basic("wrong-key"), timeout=10).status_code == 401
    assert httpx.get(remote + "/dashboard.json", headers=basic(GATEWAY_KEY), timeout=10).status_code == 200
    assert httpx.get(remote + "/", headers={"x-gateway-key": GATEWAY_KEY}, timeout=10).status_code == 200
    assert httpx.get(remote + "/", headers={"authorization": f"Bearer {GATEWAY_KEY}"}, timeout=10).status_code == 200
    # This machine needs none, unless the request came through a proxy.
    assert gw.request("GET", "/").status_code == 200
    assert gw.request("GET", "/", headers={"x-forwarded-for": "203.0.113.9"}).status_code == 401
    assert "reason=missing_client_key" in gw.logs()


@needs_lan
def test_without_client_keys_other_machines_are_refused_and_told_why(upstream_factory: Factory,
                                                                     gateway_factory: Factory) -> None:
    anthropic = upstream_factory("anthropic")
    gw = gateway_factory(dashboard_config(anthropic.url, anthropic.url), env=ENV, args=["--host", "0.0.0.0"])

    answer = httpx.get(f"http://{LAN}:{gw.port}/dashboard.json", timeout=10)

    assert answer.status_code == 403
    assert "www-authenticate" not in answer.headers  # no key could help: no password prompt
    assert "answers this machine only" in answer.json()["error"]["message"]
    assert gw.request("GET", "/dashboard.json").status_code == 200
