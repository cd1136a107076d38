"""`gateway stats --since`: spans and dates, groups, totals and shares, read from the file."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from ledger_support import seed

from gateway.ops.ledger.report import parse_since, render, report

NOW = 1_800_000_000.0


def test_since_takes_spans_and_local_dates() -> None:
    assert parse_since("90m", NOW) == NOW - 5400
    assert parse_since("24h", NOW) == NOW - 86400
    assert parse_since("7d", NOW) == NOW - 7 * 86400
    assert parse_since("2w", NOW) == NOW - 14 * 86400
    assert parse_since("1.5h", NOW) == NOW - 5400
    assert parse_since("2026-01-05", NOW) == datetime(2026, 1, 5).timestamp()
    with pytest.raises(ValueError, match="use 90m, 24h, 7d, 2w, or a date such as 2026-01-05"):
        parse_since("last week", NOW)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    seed(path, [NOW - 100, NOW - 90, NOW - 80], provider="zai", route="haiku", client_model="claude-haiku-5-5",
         upstream_model="glm-4.7", request_class="subagent", input_tokens=100, output_tokens=10)
    seed(path, [NOW - 70], provider="anthropic", input_tokens=700, output_tokens=70, cache_read_tokens=5000,
         cache_creation_tokens=50)
    seed(path, [NOW - 60], provider="anthropic", status=529, tried=2, notes="fallback zai 529", error=None)
    seed(path, [NOW - 50], endpoint="count_tokens")
    seed(path, [NOW - 10 * 86400])  # outside --since 7d
    return path


def test_groups_by_provider_with_totals_and_shares(ledger: Path) -> None:
    doc = report(ledger, NOW - 7 * 86400, "provider", NOW)
    assert [(g["key"], g["requests"]) for g in doc["groups"]] == [(["anthropic"], 2), (["zai"], 3)]
    assert doc["totals"] == {
        "requests": 5, "errors": 1, "fallbacks": 1, "input_tokens": 1010, "output_tokens": 105,
        "cache_read_tokens": 5000, "cache_creation_tokens": 50, "count_tokens": 1,
    }
    assert doc["providers"] == [
        {"provider": "zai", "requests": 3, "share_requests": 0.6, "share_tokens": round(330 / 1115, 3)},
        {"provider": "anthropic", "requests": 2, "share_requests": 0.4, "share_tokens": round(785 / 1115, 3)},
    ]


@pytest.mark.parametrize(
    ("by", "keys"),
    [
        ("route", [["default"], ["haiku"]]),
        ("model", [["claude-haiku-5-5", "glm-4.7"], ["claude-sonnet-5-5", "claude-sonnet-5-5"]]),
        ("class", [["main"], ["subagent"]]),
        ("day", [[time.strftime("%Y-%m-%d", time.localtime(NOW - 100))]]),
    ],
)
def test_every_grouping(ledger: Path, by: str, keys: list[list[str]]) -> None:
    doc = report(ledger, NOW - 7 * 86400, by, NOW)
    assert [g["key"] for g in doc["groups"]] == keys
    assert sum(g["requests"] for g in doc["groups"]) == 5


def test_the_table_puts_requests_first_then_totals_and_shares(ledger: Path) -> None:
    text = render(report(ledger, NOW - 7 * 86400, "model", NOW), "7d")
    lines = text.splitlines()
    assert lines[0].startswith("Usage from ") and "(last 7d), ledger " in lines[0]
    assert lines[2].split()[:5] == ["CLIENT", "MODEL", "UPSTREAM", "MODEL", "REQUESTS"]
    assert lines[3].split()[:3] == ["claude-haiku-5-5", "glm-4.7", "3"]
    assert lines[5].split()[:2] == ["TOTAL", "5"]
    assert "Served: zai 60.0% of requests (29.6% of tokens), anthropic 40.0% (70.4%)" in text
    assert text.endswith("count_tokens calls: 1\n")


def test_an_empty_span_says_so(ledger: Path) -> None:
    text = render(report(ledger, NOW - 30, "provider", NOW), "30s")
    assert text.splitlines()[1] == "No requests in that time."
