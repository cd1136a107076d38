"""The dashboard's JSON (gateway.ops.dashboard) from /health documents, with and without the
Claude plan's quota, and the charts' time buckets (gateway.ops.ledger.reader)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gateway.ops.dashboard import dashboard_document
from gateway.ops.ledger.reader import BUCKET_S, chart_series
from rules.loader import load_bytes

RULES = load_bytes(b"""version = 1
[providers.anthropic]
base_url = "https://api.anthropic.com"
key = { client = true }
[providers.zai]
base_url = "https://api.z.ai/api/anthropic"
key = { env = "ZAI_API_KEY" }
[providers.ollama]
base_url = "http://127.0.0.1:11434"
key = { value = "local-value-key-123456" }

[[route]]
name = "subagents"
match = "claude-*"
when = { request_class = ["subagent"] }
to = [{ provider = "zai", model = "glm-4.7" }, { provider = "anthropic" }]

[[route]]
name = "default"
match = "*"
to = [{ provider = "anthropic", spill_at = { "7d" = 0.85 } }, { provider = "zai", model = "glm-4.7" }]
""", file="routes.toml", env={"ZAI_API_KEY": "zai-secret"})

NOW = 1_800_000_000.0


def health(**extra: Any) -> dict[str, Any]:
    """A /health document as gateway.ops.health builds it (abridged to what the page reads)."""
    doc: dict[str, Any] = {
        "status": "ok", "version": "0.1.0", "pid": 42,
        "config": {"source": "file", "path": "/etc/routes.toml", "generation": 3, "loaded_at": "2027-01-15T08:00:00Z",
                   "last_error": None},
        "providers": {
            "anthropic": {"base_url": "https://api.anthropic.com", "credential_available": None,
                          "key": [{"source": "client", "available": None}]},
            "zai": {"base_url": "https://api.z.ai/api/anthropic", "credential_available": True,
                    "key": [{"source": "env ZAI_API_KEY", "available": True}]},
            "ollama": {"base_url": "http://127.0.0.1:11434", "credential_available": True,
                       "key": [{"source": "value local...3456", "available": True}]},
        },
        "resilience": {
            "cooldowns": [{"provider": "zai", "credential": "env#1a2b", "until": "2027-01-15T08:10:00Z",
                           "seconds_left": 600, "status": 429, "reason": "retry-after: 600"}],
            "circuits": [{"provider": "ollama", "state": "open", "consecutive_failures": 3,
                          "until": "2027-01-15T08:00:05Z"}],
            "concurrency": {"zai": {"in_flight": 2, "waiting": 0, "max_concurrent": 4}},
        },
    }
    doc.update(extra)
    return doc


QUOTA = [{
    "provider": "anthropic", "credential": "oauth#9f8e7d", "status": "allowed", "reset": "2027-01-15T10:00:00Z",
    "windows": {"5h": {"utilization": 0.42, "reset": "2027-01-15T10:00:00Z", "status": "allowed"},
                "7d": {"utilization": 0.91, "reset": "2027-01-19T00:00:00Z", "status": "allowed_warning"}},
    "spilling": ["7d"],
    "raw_headers": {"x": "anything else /health may grow is not passed on"},
}]


def build(doc: dict[str, Any]) -> dict[str, Any]:
    usage = {"recent": [], "charts": chart_series({}, NOW, 0)}
    status = {"path": "/home/u/.local/state/claude-gateway/ledger.db", "state": "ok", "error": None, "written": 5,
              "dropped": 0}
    return dashboard_document(doc, RULES, usage, status, NOW)


def states(doc: dict[str, Any]) -> dict[str, tuple[str, str, str | None]]:
    return {p["name"]: (p["state"], p["detail"], p["until"]) for p in doc["providers"]}


def test_without_quota_there_are_no_windows_and_states_come_from_resilience() -> None:
    doc = build(health())
    assert doc["quota"] == []
    assert states(doc) == {
        "anthropic": ("ready", "", None),
        "zai": ("cooling", "answered 429: retry-after: 600", "2027-01-15T08:10:00Z"),
        "ollama": ("circuit_open", "unreachable 3 times in a row", "2027-01-15T08:00:05Z"),
    }
    assert next(p for p in doc["providers"] if p["name"] == "zai")["concurrency"] == {
        "in_flight": 2, "waiting": 0, "max_concurrent": 4}
    assert doc["gateway"]["config"]["generation"] == 3 and doc["now"] == "2027-01-15T08:00:00.000Z"


def test_quota_windows_become_bars_and_a_spilling_provider_says_so() -> None:
    doc = build(health(quota=QUOTA))
    assert doc["quota"] == [{
        "provider": "anthropic", "credential": "oauth#9f8e7d", "status": "allowed", "reset": "2027-01-15T10:00:00Z",
        "windows": [
            {"name": "5h", "utilization": 0.42, "reset": "2027-01-15T10:00:00Z", "status": "allowed"},
            {"name": "7d", "utilization": 0.91, "reset": "2027-01-19T00:00:00Z", "status": "allowed_warning"},
        ],
        "spilling": ["7d"],
    }]
    assert states(doc)["anthropic"] == ("spilling", "past spill_at on the 7d window", None)
    assert "raw_headers" not in json.dumps(doc)


def test_an_api_keys_limits_draw_no_plan() -> None:
    api_key = {"provider": "zai", "credential": "env#0a4b", "status": None, "windows": {},
               "limits": {"requests": {"limit": 50, "remaining": 49}}}
    doc = build(health(quota=[*QUOTA, api_key]))
    assert [entry["provider"] for entry in doc["quota"]] == ["anthropic"]


def test_routes_carry_conditions_in_words_and_spill_at() -> None:
    routes = build(health())["routes"]
    assert routes[0]["when"] == "request_class subagent"
    assert [t["provider"] for t in routes[0]["targets"]] == ["zai", "anthropic"]
    assert routes[1]["when"] == ""
    assert routes[1]["targets"][0] == {"provider": "anthropic", "model": None, "spill_at": "7d at 85%"}
    assert routes[1]["fallback_on"] == [429, 500, 502, 503, 504, 529]


def test_no_key_source_or_secret_reaches_the_document() -> None:
    text = json.dumps(build(health(quota=QUOTA)))
    for secret in ("zai-secret", "local-value-key-123456", "local...3456", "env ZAI_API_KEY", "env#1a2b"):
        assert secret not in text


@pytest.mark.parametrize("tz", [0, 60, -300, 330, 345])
def test_chart_buckets_fall_into_local_hours_and_days(tz: int) -> None:
    now = 1_800_000_000.0 + 1234  # not on a bucket boundary
    shift = tz * 60
    hour_start = (now + shift) // 3600 * 3600 - shift  # this local hour's start, epoch
    day_start = (now + shift) // 86400 * 86400 - shift
    buckets = {
        ("zai", int(hour_start // BUCKET_S)): [2, 200],  # this hour
        ("zai", int((hour_start - 1) // BUCKET_S)): [1, 10],  # the last quarter of the hour before
        ("anthropic", int((day_start - 1) // BUCKET_S)): [5, 500],  # the end of yesterday
        ("anthropic", int((day_start - 7 * 86400) // BUCKET_S)): [9, 9],  # 7 days ago: off the chart
    }
    charts = chart_series(buckets, now, tz)
    zai, anthropic = charts["providers"]["zai"], charts["providers"]["anthropic"]
    assert zai["hour_requests"][-2:] == [1, 2] and zai["hour_tokens"][-1] == 200
    assert anthropic["day_requests"] == [0, 0, 0, 0, 0, 5, 0]
    assert charts["hour_starts"][-1] == hour_start and len(charts["hour_starts"]) == 24
    assert charts["day_labels"][-1] == time.strftime("%Y-%m-%d", time.gmtime(now + shift))
