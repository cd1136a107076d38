"""Routing on Claude Code's hint headers and on the Claude plan's quota, end to end.

The real gateway (a subprocess), fake upstreams on loopback sockets that answer like Anthropic
(with `anthropic-ratelimit-unified-*` headers) and like Z.AI, and the official SDK as client.
Quota state is kept per credential, so each test uses API keys of its own.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes import Choose, Error, FakeUpstream, RecordedRequest, Reply, unified_headers
from fakes.claude_code import load as load_captured
from fakes.config import profile_with_urls, routes_toml
from fakes.gateway import GatewayProcess, anthropic_client

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZAI_KEY = "zai-key-quota-0000000000"
HINTS = ("x-claude-code-request-class", "x-claude-code-agent-type", "x-claude-code-agent-id",
         "x-claude-code-prompt-id", "x-claude-code-session-id")


def fresh_key() -> str:
    # Looks like a real Anthropic key, so a leak anywhere would be a recognisable secret.
    return "sk-ant-api03-" + secrets.token_urlsafe(32)


def hints(capture: str) -> dict[str, str]:
    """The hint headers Claude Code sent with a captured request."""
    return {k: v for k, v in load_captured(capture).header_dict.items() if k in HINTS}


def ask(gateway: GatewayProcess, key: str, *, model: str = "claude-sonnet-5-5", headers: dict[str, str] | None = None,
        **extra: Any) -> str:
    """One request through the SDK; the text of the answer (which says which upstream answered)."""
    with anthropic_client(gateway, api_key=key, default_headers=headers) as client:
        message = client.messages.create(
            model=model, max_tokens=32, messages=[{"role": "user", "content": "hi"}], **extra
        )
    return message.content[0].text  # type: ignore[union-attr]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def upstreams(upstream_factory: Callable[..., FakeUpstream]) -> tuple[FakeUpstream, FakeUpstream]:
    anthropic = upstream_factory("anthropic")
    zai = upstream_factory("zai", api_key=ZAI_KEY, strict_third_party=True, allowed_betas=None)
    return anthropic, zai


def quota_saver(gateway_factory: Callable[..., GatewayProcess], anthropic: FakeUpstream, zai: FakeUpstream) -> GatewayProcess:
    config = profile_with_urls(EXAMPLES / "quota-saver.toml", {"anthropic": anthropic.url, "zai": zai.url})
    return gateway_factory(config, env={"ZAI_API_KEY": ZAI_KEY})


def test_hint_headers_send_each_request_where_the_rules_say(
    gateway_factory: Callable[..., GatewayProcess], upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    anthropic, zai = upstreams
    gateway = quota_saver(gateway_factory, anthropic, zai)
    key = fresh_key()
    main = ask(gateway, key, headers=hints("cc_hint_headers_main_spawning_agent"))
    assert main.startswith("[anthropic] model=claude-sonnet-5-5")
    subagent = ask(gateway, key, headers=hints("cc_hint_headers_subagent"))
    assert subagent.startswith("[zai] model=glm-4.7")
    assert ask(gateway, key).startswith("[anthropic] model=claude-sonnet-5-5")  # no header: unknown -> main
    searching = ask(gateway, key, headers=hints("cc_hint_headers_subagent"),
                    tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}])
    assert searching.startswith("[anthropic]")  # server tools stay on Anthropic, even for a subagent
    # The hint headers still reach the upstream (Claude Code's own headers are forwarded).
    assert anthropic.requests[0].headers["x-claude-code-request-class"] == "main"
    assert zai.last.headers["x-claude-code-agent-type"] == "general-purpose"
    assert not zai.saw(key)
    log = gateway.wait_for_log("route=server-tools class=subagent agent=general-purpose tried=anthropic:200")
    assert "route=helpers class=subagent agent=general-purpose tried=zai:200" in log
    assert "route=main class=main tried=anthropic:200" in log
    assert "route=main class=unknown tried=anthropic:200" in log


def test_the_real_captured_subagent_request_reaches_zai_as_glm(
    gateway_factory: Callable[..., GatewayProcess], upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    anthropic, zai = upstreams
    gateway = quota_saver(gateway_factory, anthropic, zai)
    with httpx.Client(timeout=30) as client:
        for capture, upstream in (("cc_hint_headers_subagent", zai), ("cc_hint_headers_main_after_agent", anthropic)):
            with load_captured(capture, api_key=fresh_key()).stream_to(client, gateway.url) as response:
                assert response.status_code == 200, response.read()
                response.read()
            assert upstream.last.path == "/v1/messages?beta=true"
    assert zai.last.model == "glm-4.7" and anthropic.last.model == "claude-sonnet-5-5"


def test_no_when_holding_is_a_400_naming_the_facts_and_models_lists_the_name(
    gateway_factory: Callable[..., GatewayProcess], upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    _, zai = upstreams
    config = routes_toml(
        providers={"zai": {"base_url": zai.url, "key": {"env": "ZAI_API_KEY"}}},
        routes=[{"name": "helpers", "match": "glm-4.7", "when": {"request_class": ["subagent"]}, "to": "zai"}],
    )
    gateway = gateway_factory(config, env={"ZAI_API_KEY": ZAI_KEY})
    answer = gateway.request("POST", "/v1/messages", headers={"anthropic-version": "2023-06-01"},
                             json={"model": "glm-4.7", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    # 400, not 404: Claude Code replaces a 404's text with its own "the selected model may not
    # exist"; a retry cannot fix it, so it says so.
    assert answer.status_code == 400
    assert answer.headers["x-should-retry"] == "false"
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "helpers (when request_class subagent)" in error["message"]
    assert "request_class unknown (no x-claude-code-request-class header)" in error["message"]
    assert "CLAUDE_CODE_GATEWAY_HINT_HEADERS=1" in error["message"]
    subagent = gateway.request("POST", "/v1/messages", headers={"x-claude-code-request-class": "subagent"},
                               json={"model": "glm-4.7", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert subagent.status_code == 200
    assert [m["id"] for m in gateway.request("GET", "/v1/models").json()["data"]] == ["glm-4.7"]


def test_spill_at_moves_one_credential_at_the_threshold_while_another_stays_until_the_reset(
    gateway_factory: Callable[..., GatewayProcess], upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    anthropic, zai = upstreams
    gateway = quota_saver(gateway_factory, anthropic, zai)
    heavy, light = fresh_key(), fresh_key()
    reset = int(time.time()) + 2
    week = time.time() + 5 * 86400

    def plan(recorded: RecordedRequest) -> Reply:
        # The heavy user's week is at 90% until `reset`; then a new window starts at 10%.
        if recorded.headers.get("x-api-key") == heavy:
            used = 0.9 if time.time() < reset else 0.1
            return Reply(headers=unified_headers(claim="seven_day", reset=reset,
                                                 windows={"5h": (0.3, week), "7d": (used, reset if used > 0.5 else week)}))
        return Reply(headers=unified_headers(windows={"5h": (0.5, week), "7d": (0.5, week)}))

    anthropic.set_default(Choose(plan))
    assert ask(gateway, heavy).startswith("[anthropic]")  # learns: 7d at 90%
    assert ask(gateway, heavy).startswith("[zai] model=glm-4.7")  # steps aside at 85%
    assert ask(gateway, light).startswith("[anthropic]") and ask(gateway, light).startswith("[anthropic]")
    assert len(anthropic.requests) == 3

    entries = {e["credential"]: e for e in gateway.health()["quota"] if e["provider"] == "anthropic"}
    assert len(entries) == 2
    spilling = [e for e in entries.values() if e["spilling"]]
    assert [e["spilling"] for e in spilling] == [["7d"]] and spilling[0]["windows"]["7d"]["utilization"] == 0.9
    assert gateway.wait_for_log("spill=anthropic:7d")
    assert "tried=anthropic:spill,zai:200" in gateway.logs()
    metrics = gateway.request("GET", "/metrics").text
    assert 'gateway_spills_total{provider="anthropic",route="main",window="7d"} 1.0' in metrics

    # After the reset time the old figure no longer counts: Anthropic is asked again.
    wait_for(lambda: ask(gateway, heavy).startswith("[anthropic]"), "the heavy credential back on anthropic")
    assert time.time() >= reset
    assert ask(gateway, heavy).startswith("[anthropic]")  # and the fresh 10% keeps it there


def test_a_rejected_plan_keeps_that_credential_off_until_the_unified_reset(
    gateway_factory: Callable[..., GatewayProcess], upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    anthropic, zai = upstreams
    config = routes_toml(
        providers={"anthropic": {"base_url": anthropic.url, "key": {"client": True}},
                   "zai": {"base_url": zai.url, "key": {"env": "ZAI_API_KEY"}, "preset": "zai"}},
        routes=[{"name": "main", "match": "*", "to": [{"provider": "anthropic"}, {"provider": "zai", "model": "glm-4.7"}]}],
    )
    gateway = gateway_factory(config, env={"ZAI_API_KEY": ZAI_KEY})
    limited, other = fresh_key(), fresh_key()
    reset = int(time.time()) + 2
    rejected = unified_headers(status="rejected", claim="five_hour", reset=reset,
                               windows={"5h": (1.0, reset), "7d": (0.4, time.time() + 86400)})
    anthropic.enqueue(Error(429, message="Claude plan limit reached", headers=rejected))  # no retry-after
    assert ask(gateway, limited).startswith("[zai]")  # the 429 falls back at once
    assert ask(gateway, limited).startswith("[zai]") and ask(gateway, limited).startswith("[zai]")
    assert len(anthropic.requests) == 1  # not asked again before the reset
    assert ask(gateway, other).startswith("[anthropic]")  # another login is not affected
    [cooldown] = gateway.health()["resilience"]["cooldowns"]
    assert "Claude plan limit reached (five_hour)" in cooldown["reason"] and 0 < cooldown["seconds_left"] <= 2
    assert gateway.logs().count("cooling down until") == 1
    wait_for(lambda: ask(gateway, limited).startswith("[anthropic]"), "the limited credential back on anthropic")
    assert time.time() >= reset  # never before the unified reset


def test_quota_headers_reach_the_client_unchanged(
    gateway_factory: Callable[..., GatewayProcess], upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    anthropic, zai = upstreams
    gateway = quota_saver(gateway_factory, anthropic, zai)
    sent = unified_headers(status="allowed_warning", claim="seven_day", reset=time.time() + 600,
                           windows={"5h": (0.42, time.time() + 600), "7d": (0.81, time.time() + 86400)})
    sent["anthropic-ratelimit-unified-7d-surpassed-threshold"] = "0.75"
    anthropic.enqueue(Reply(headers=sent), Reply(headers=sent))
    anthropic.enqueue(Error(429, headers={**sent, "anthropic-ratelimit-unified-status": "rejected"}))
    with anthropic_client(gateway, api_key=fresh_key()) as client:
        whole = client.messages.with_raw_response.create(
            model="claude-opus-5-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        with client.messages.with_streaming_response.create(
            model="claude-opus-5-5", max_tokens=8, stream=True, messages=[{"role": "user", "content": "hi"}]
        ) as streamed:
            streamed.read()
    # The last target's error: a server-tool route has no fallback, so Claude Code sees the 429 as sent.
    error = gateway.request("POST", "/v1/messages", headers={"x-api-key": fresh_key(), "anthropic-version": "2023-06-01"},
                            json={"model": "claude-opus-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}],
                                  "tools": [{"type": "web_search_20250305", "name": "web_search"}]})
    assert error.status_code == 429
    for response_headers, expected in ((whole.headers, sent), (streamed.headers, sent),
                                       (error.headers, {**sent, "anthropic-ratelimit-unified-status": "rejected"})):
        got = {k: v for k, v in response_headers.items() if k.startswith("anthropic-ratelimit-unified-")}
        assert got == expected
        assert response_headers["anthropic-ratelimit-requests-limit"] == "4000"  # the API-key headers too


def test_health_metrics_and_stats_show_the_quota_and_never_the_secret(
    gateway_factory: Callable[..., GatewayProcess], upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    anthropic, zai = upstreams
    gateway = quota_saver(gateway_factory, anthropic, zai)
    key = fresh_key()
    five, week = time.time() + 3600, time.time() + 4 * 86400
    anthropic.set_default(Reply(headers=unified_headers(
        claim="five_hour", reset=five, windows={"5h": (0.42, five), "7d": (0.61, week), "7d_oi": (0.2, week)})))
    assert ask(gateway, key).startswith("[anthropic]")
    health = gateway.health()
    [entry] = [e for e in health["quota"] if e["provider"] == "anthropic"]
    assert entry["provider"] == "anthropic" and entry["credential"].startswith("client#")
    assert entry["status"] == "allowed" and entry["representative_claim"] == "five_hour"
    assert entry["windows"]["5h"]["utilization"] == 0.42 and entry["windows"]["7d"]["utilization"] == 0.61
    assert entry["windows"]["5h"]["reset"].endswith("Z") and entry["spilling"] == []
    assert entry["limits"]["requests"] == {"limit": 4000, "remaining": 3999, "reset": entry["limits"]["requests"]["reset"]}
    metrics = gateway.request("GET", "/metrics").text
    label = f'credential="{entry["credential"]}",provider="anthropic",window="7d"'
    samples = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#"))
    assert float(samples[f"gateway_quota_utilization{{{label}}}"]) == 0.61
    assert float(samples[f"gateway_quota_reset_timestamp_seconds{{{label}}}"]) == int(week)
    stats = gateway.request("GET", "/stats").json()
    [row] = [r for r in stats["quota"] if r["provider"] == "anthropic"]
    assert row["credential"] == entry["credential"] and list(row["windows"]) == ["5h", "7d", "7d_oi"]
    assert 3500 < row["windows"]["5h"]["resets_in_s"] <= 3600
    for document in (json.dumps(health), metrics, json.dumps(stats), gateway.logs()):
        assert key not in document and key[-12:] not in document


def test_with_two_workers_the_most_recent_figure_wins(
    gateway_factory: Callable[..., GatewayProcess], upstreams: tuple[FakeUpstream, FakeUpstream], tmp_path: Path
) -> None:
    anthropic, zai = upstreams
    temp = tmp_path / "tmp"
    temp.mkdir()
    config = profile_with_urls(EXAMPLES / "quota-saver.toml", {"anthropic": anthropic.url, "zai": zai.url})
    gateway = gateway_factory(config, env={"ZAI_API_KEY": ZAI_KEY, "TMPDIR": str(temp)}, args=["--workers", "2"])
    key = fresh_key()
    week = time.time() + 4 * 86400
    anthropic.set_default(Reply(headers=unified_headers(windows={"7d": (0.61, week)})))

    def both_workers_saw_it() -> bool:
        # Each worker's gauges live in its own file: two files, two workers hold 0.61.
        ask(gateway, key)
        return len(list(temp.glob("gateway-metrics-*/gauge_mostrecent_*.db"))) >= 2

    wait_for(both_workers_saw_it, "both workers answering for the credential", timeout=60)
    # A new week: the next answer, whichever worker gets it, replaces the old figure everywhere.
    anthropic.set_default(Reply(headers=unified_headers(windows={"7d": (0.05, week + 7 * 86400)})))
    ask(gateway, key)

    def utilization() -> float:
        text = gateway.request("GET", "/metrics").text
        values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("gateway_quota_utilization{") and 'provider="anthropic"' in line]
        return values[0] if len(values) == 1 else -1.0

    wait_for(lambda: utilization() == 0.05, "the new figure on /metrics")
    for _ in range(6):  # any worker answers the scrape with it (fresh connections)
        assert utilization() == 0.05


def test_a_spilling_last_target_serves_anyway_and_says_so(
    gateway_factory: Callable[..., GatewayProcess], upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    anthropic, _ = upstreams
    config = routes_toml(
        providers={"anthropic": {"base_url": anthropic.url, "key": {"client": True}}},
        routes=[{"name": "only", "match": "*", "to": [{"provider": "anthropic", "spill_at": {"7d": 0.5}}]}],
    )
    gateway = gateway_factory(config, args=["--log-format", "json"])
    week = time.time() + 86400
    anthropic.set_default(Reply(headers=unified_headers(windows={"7d": (0.9, week)})))
    key = fresh_key()
    assert ask(gateway, key).startswith("[anthropic]") and ask(gateway, key).startswith("[anthropic]")
    assert len(anthropic.requests) == 2  # spill_at never refuses a request
    gateway.wait_for_log("asked anyway")
    lines = [json.loads(line) for line in gateway.logs().splitlines() if line.startswith("{")]
    served = [line for line in lines if line.get("event") == "request"][-1]
    [attempt] = served["tried"]
    assert attempt["result"] == "200"
    assert attempt["detail"].startswith("7d window at 90% >= spill_at 50% until ")
    assert attempt["detail"].endswith("but the route's last target: asked anyway")
    assert "spill" not in served  # it did not step aside
