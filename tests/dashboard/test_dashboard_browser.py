"""The dashboard in a real browser (headless Chromium over its DevTools protocol): providers,
routes and a request made a moment earlier appear without a reload; plan windows are bars with
countdowns; another machine signs in with the key as the password; no key on the page."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chromium_driver import CHROMIUM, Chromium
from dashboard_support import CLIENT_API_KEY, ENV, GATEWAY_KEY, ZAI_KEY, dashboard_config, lan_address, leaked

from fakes import Reply
from fakes.gateway import anthropic_client
from gateway.ops.dashboard import dashboard_document
from gateway.ops.ledger.reader import chart_series
from rules.loader import load_bytes

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium; .ci/run installs it)"
)

Factory = Callable[..., Any]
CARDS = "document.querySelectorAll('#providers .card').length"
ROUTE_ROWS = "document.querySelectorAll('#routes tr').length"
RECENT_TEXT = "document.getElementById('recent').innerText"


def ask(gw: Any, model: str, request_class: str = "main") -> None:
    client = anthropic_client(gw, api_key=CLIENT_API_KEY, default_headers={"x-claude-code-request-class": request_class})
    client.messages.create(model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}])


async def test_the_page_shows_providers_routes_and_a_new_request_without_a_reload(
    tmp_path: Path, upstream_factory: Factory, gateway_factory: Factory
) -> None:
    anthropic = upstream_factory("anthropic", api_key=CLIENT_API_KEY)
    anthropic.set_default(Reply(input_tokens=1234, output_tokens=56))
    zai = upstream_factory("zai", api_key=ZAI_KEY)
    gw = gateway_factory(dashboard_config(anthropic.url, zai.url, ledger=str(tmp_path / "ledger.db")), env=ENV)

    async with Chromium.launch(tmp_path / "chromium") as browser:
        await browser.navigate(gw.url + "/")
        await browser.wait_for(f"{CARDS} === 3 && {ROUTE_ROWS} === 2", what="3 provider cards and 2 routes")
        cards = await browser.evaluate("document.getElementById('providers').innerText")
        for name in ("anthropic", "zai", "literal"):
            assert name in cards
        assert "ready" in cards
        routes = await browser.evaluate("document.getElementById('routes').innerText")
        assert "request_class subagent" in routes and "spill at 7d at 85%" in routes and "glm-4.7" in routes
        assert await browser.evaluate("document.querySelectorAll('.window').length") == 0  # no plan windows
        assert "No requests yet" in await browser.evaluate("document.getElementById('recent-note').innerText")

        await browser.evaluate("window.loadedOnce = 'yes'")
        ask(gw, "claude-opus-5-5-dashboard-probe")
        row = await browser.wait_for(
            "[...document.querySelectorAll('#recent tr')].map(r => r.innerText).find(t => t.includes('dashboard-probe'))",
            what="the request in the list",
        )
        assert await browser.evaluate("window.loadedOnce") == "yes"  # the same document: no reload
        assert "anthropic" in row and "200" in row and "1,234 / 56" in row and "main" in row
        await browser.wait_for("document.querySelectorAll('#chart-hour-requests rect').length > 0", what="a bar")
        assert "live" in await browser.evaluate("document.getElementById('live-text').innerText")

        # What the page received and shows: no key, no secret.
        seen = await browser.evaluate("fetch('/dashboard.json').then(r => r.text())")
        assert leaked(seen) == [] and leaked(await browser.evaluate("document.documentElement.outerHTML")) == []
        assert json.loads(seen)["recent"][0]["client_model"] == "claude-opus-5-5-dashboard-probe"
        assert [m for m in browser.console if "exception" in m] == []


async def test_plan_windows_are_bars_with_reset_countdowns(tmp_path: Path, upstream_factory: Factory,
                                                           gateway_factory: Factory) -> None:
    anthropic = upstream_factory("anthropic")
    text = dashboard_config(anthropic.url, anthropic.url)
    gw = gateway_factory(text, env=ENV)
    # /health will carry the plan's windows (issue 11); the page is shown such a document here.
    now = time.time()
    reset_5h, reset_7d = now + 2 * 3600 + 630, now + 3 * 86400 - 1800
    health = gw.health()
    health["quota"] = [{
        "provider": "anthropic", "credential": "oauth#9f8e7d", "status": "allowed",
        "reset": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset_5h)),
        "windows": {
            "5h": {"utilization": 0.42, "reset": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset_5h)), "status": "allowed"},
            "7d": {"utilization": 0.93, "reset": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset_7d)),
                   "status": "allowed_warning"},
        },
        "spilling": ["7d"],
    }]
    doc = dashboard_document(health, load_bytes(text.encode()), {"recent": [], "charts": chart_series({}, now, 0)},
                             {"path": "/x/ledger.db", "state": "ok", "error": None, "written": 0, "dropped": 0}, now)

    async with Chromium.launch(tmp_path / "chromium") as browser:
        await browser.serve_instead("*/dashboard.json*", json.dumps(doc).encode())
        await browser.navigate(gw.url + "/")
        await browser.wait_for("document.querySelectorAll('.window').length === 2", what="two window bars")
        card = await browser.evaluate("document.querySelector('[data-provider=anthropic]').innerText")
        assert "spilling" in card and "42% used" in card and "93% used" in card and "spilling on 7d" in card
        assert "resets " in card and "(in 2 h 10 min)" in card and "(in 2 d 23 h)" in card
        widths = await browser.evaluate("[...document.querySelectorAll('.bar > div')].map(d => d.style.width)")
        assert widths == ["42%", "93%"]
        assert await browser.evaluate("document.querySelectorAll('.bar.bad').length") == 1  # 93%: red


LAN = lan_address()


@pytest.mark.skipif(LAN is None, reason="this machine has no non-loopback IPv4 address to connect from")
async def test_another_machine_signs_in_with_the_key_as_password(tmp_path: Path, upstream_factory: Factory,
                                                                 gateway_factory: Factory) -> None:
    anthropic = upstream_factory("anthropic")
    gw = gateway_factory(dashboard_config(anthropic.url, anthropic.url, client_keys=True), env=ENV,
                         args=["--host", "0.0.0.0"])
    remote = f"http://{LAN}:{gw.port}/"

    async with Chromium.launch(tmp_path / "chromium") as browser:
        await browser.answer_auth(None, None)  # the person closes the password prompt
        await browser.navigate(remote)
        await browser.wait_for("document.body && document.body.innerText.includes('needs a client key')",
                               what="the 401 answer")
        assert await browser.evaluate("document.querySelectorAll('#providers').length") == 0

        await browser.answer_auth("me", GATEWAY_KEY)
        await browser.navigate(remote)
        await browser.wait_for(f"{CARDS} === 3", what="the page, signed in")
        # The page's own polls carry the browser's credentials: still live a poll later.
        first = await browser.evaluate("document.body.dataset.updated")
        await browser.wait_for(f"document.body.dataset.updated !== {json.dumps(first)}", what="a later poll")
        assert leaked(await browser.evaluate("document.documentElement.outerHTML")) == []


async def test_without_a_ledger_the_page_says_so_and_lists_this_workers_requests(
    tmp_path: Path, upstream_factory: Factory, gateway_factory: Factory
) -> None:
    anthropic = upstream_factory("anthropic", api_key=CLIENT_API_KEY)
    gw = gateway_factory(dashboard_config(anthropic.url, anthropic.url, ledger=False), env=ENV)
    ask(gw, "claude-sonnet-5-5-no-ledger")

    async with Chromium.launch(tmp_path / "chromium") as browser:
        await browser.navigate(gw.url + "/")
        await browser.wait_for(f"{RECENT_TEXT}.includes('no-ledger')", what="the request, from memory")
        note = await browser.evaluate("document.getElementById('charts-note').innerText")
        assert "The usage ledger is off" in note
        assert "Ledger: off" in await browser.evaluate("document.getElementById('ledger').innerText")
