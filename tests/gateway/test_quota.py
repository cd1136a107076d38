"""gateway.upstream.quota: the quota headers of each answer, per credential, driven by a fake clock."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from gateway.upstream.credentials import Credential
from gateway.upstream.provider_health import ProviderHealth, cooldown_until
from gateway.upstream.quota import QuotaBook, plan_reset, quota_headers, spill_thresholds
from rules.loader import load_bytes
from rules.model import KeySource

NOW = 1_900_000_000.0
SECRET = "sk-ant-oat01-Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def unified(*, status: str = "allowed", claim: str = "five_hour", reset: float | None = NOW + 3600,
            **windows: tuple[float, float]) -> dict[str, str]:
    """Claude-plan headers as Anthropic sends them; windows as ``h5=(utilization, reset)``."""
    headers = {"anthropic-ratelimit-unified-status": status, "anthropic-ratelimit-unified-representative-claim": claim}
    if reset is not None:
        headers["anthropic-ratelimit-unified-reset"] = str(int(reset))
    for key, (used, until) in windows.items():
        name = {"h5": "5h", "d7": "7d", "d7_oi": "7d_oi"}.get(key, key)
        headers[f"anthropic-ratelimit-unified-{name}-utilization"] = str(used)
        headers[f"anthropic-ratelimit-unified-{name}-reset"] = str(int(until))
        headers[f"anthropic-ratelimit-unified-{name}-status"] = "rejected" if used >= 1 else "allowed"
    return headers


def raw(headers: dict[str, str]) -> httpx.Headers:
    """An answer head as the transport hands it over, with the server's spelling of the names."""
    base = {"Content-Type": "application/json", "request-id": "req_1", "Date": "x"}
    return httpx.Headers({**base, **headers})


def login(secret: str = SECRET) -> Credential:
    return Credential((("authorization", f"Bearer {secret}"),), KeySource("oauth_file"), True)


def client(fingerprint: str) -> Credential:
    return Credential((("x-api-key", "sk-" + fingerprint * 8),), KeySource("client"), None, fingerprint)


def test_an_answer_without_quota_headers_is_not_kept() -> None:
    book = QuotaBook(clock=Clock())
    assert quota_headers(raw({"x-other": "1"})) == []
    assert book.observe("zai", login(), raw({"x-other": "1"})) is None
    assert book.entries() == [] and book.get("zai", login()) is None


def test_unified_headers_are_parsed_per_window() -> None:
    headers = unified(status="allowed_warning", claim="seven_day", h5=(0.42, NOW + 600), d7=(0.86, NOW + 86400))
    headers["Anthropic-RateLimit-Unified-7d-Surpassed-Threshold"] = "0.75"  # any spelling of the name
    headers["anthropic-ratelimit-unified-fallback-percentage"] = "0.5"  # informational: ignored
    quota = QuotaBook(clock=Clock()).observe("anthropic", login(), raw(headers))
    assert quota is not None
    quota.parse()
    assert (quota.status, quota.representative_claim, quota.reset) == ("allowed_warning", "seven_day", NOW + 3600)
    assert sorted(quota.windows) == ["5h", "7d"]
    assert quota.windows["7d"].utilization == 0.86 and quota.windows["7d"].reset == NOW + 86400
    assert quota.windows["7d"].surpassed_threshold == 0.75 and quota.windows["5h"].status == "allowed"


def test_api_key_limits_are_parsed() -> None:
    headers = {
        "anthropic-ratelimit-requests-limit": "4000",
        "anthropic-ratelimit-requests-remaining": "3999",
        "anthropic-ratelimit-requests-reset": "2030-03-17T17:47:20Z",
        "anthropic-ratelimit-output-tokens-remaining": "80000",
        "anthropic-ratelimit-bogus-limit": "1",
    }
    quota = QuotaBook(clock=Clock()).observe("anthropic", login(), raw(headers))
    assert quota is not None
    limits = quota.parse().limits
    assert sorted(limits) == ["output-tokens", "requests"]
    assert (limits["requests"].limit, limits["requests"].remaining) == (4000, 3999)
    assert limits["requests"].reset == 1_900_000_040.0 and quota.windows == {}


def test_garbage_values_and_too_many_windows_are_harmless() -> None:
    headers = {f"anthropic-ratelimit-unified-w{i}-utilization": "0.5" for i in range(20)}
    headers["anthropic-ratelimit-unified-5h-utilization"] = "nan"
    headers["anthropic-ratelimit-unified-5h-reset"] = "soon"
    quota = QuotaBook(clock=Clock()).observe("anthropic", login(), raw(headers))
    assert quota is not None
    assert len(quota.parse().windows) <= 8
    assert all(w.reset is None for w in quota.windows.values())


@pytest.mark.parametrize(
    ("used", "reset_in", "spills"),
    [(0.85, 60, True), (0.97, 60, True), (0.84, 60, False), (0.99, -1, False), (0.99, 0, False)],
)
def test_spill_needs_the_threshold_and_a_reset_ahead(used: float, reset_in: float, spills: bool) -> None:
    clock = Clock()
    book = QuotaBook(clock=clock)
    book.observe("anthropic", login(), raw(unified(d7=(used, NOW + reset_in))))
    spill = book.spill("anthropic", login(), (("5h", 0.95), ("7d", 0.85)))
    assert (spill is not None) == spills
    if spill is not None:
        assert (spill.window, spill.used, spill.threshold) == ("7d", used, 0.85)
        assert spill.detail.startswith(f"7d window at {used:.0%} >= spill_at 85% until ")


def test_the_old_figure_stops_counting_when_the_reset_passes() -> None:
    clock = Clock()
    book = QuotaBook(clock=clock)
    book.observe("anthropic", login(), raw(unified(h5=(0.99, NOW + 30))))
    assert book.spill("anthropic", login(), (("5h", 0.95),)) is not None
    clock.now = NOW + 30
    assert book.spill("anthropic", login(), (("5h", 0.95),)) is None


def test_a_rejected_window_counts_as_full_and_a_window_without_reset_never_spills() -> None:
    book = QuotaBook(clock=Clock())
    headers = {"anthropic-ratelimit-unified-7d-status": "rejected", "anthropic-ratelimit-unified-7d-reset": str(int(NOW + 9)),
               "anthropic-ratelimit-unified-5h-utilization": "1.0"}
    book.observe("anthropic", login(), raw(headers))
    spill = book.spill("anthropic", login(), (("5h", 0.5), ("7d", 0.99)))
    assert spill is not None and (spill.window, spill.used) == ("7d", 1.0)


def test_state_is_kept_per_provider_and_credential() -> None:
    book = QuotaBook(clock=Clock())
    book.observe("anthropic", client("client#a"), raw(unified(d7=(0.9, NOW + 60))))
    book.observe("anthropic", client("client#b"), raw(unified(d7=(0.1, NOW + 60))))
    assert book.spill("anthropic", client("client#a"), (("7d", 0.85),)) is not None
    assert book.spill("anthropic", client("client#b"), (("7d", 0.85),)) is None
    assert book.spill("other", client("client#a"), (("7d", 0.85),)) is None
    # The latest answer replaces the state.
    book.observe("anthropic", client("client#a"), raw(unified(d7=(0.2, NOW + 60))))
    assert book.spill("anthropic", client("client#a"), (("7d", 0.85),)) is None


def test_the_book_is_bounded_and_drops_the_least_recently_updated() -> None:
    book = QuotaBook(capacity=3, clock=Clock())
    for name in "abcd":
        book.observe("anthropic", client(f"client#{name}"), raw(unified()))
        if name == "b":
            book.observe("anthropic", client("client#a"), raw(unified()))  # a is fresh again
    assert [q.credential for q in book.entries()] == ["client#a", "client#c", "client#d"]


def test_credentials_are_named_by_a_digest_never_the_secret() -> None:
    book = QuotaBook(clock=Clock())
    name = book.credential_name(login())
    assert name.startswith("oauth_file#") and SECRET not in name and SECRET[-8:] not in name
    assert book.credential_name(login()) == name != book.credential_name(login(SECRET + "x"))
    assert book.credential_name(client("client#abc")) == "client#abc"
    assert book.credential_name(Credential((), None, None)) == "none"  # a keyless provider


def test_listeners_hear_every_new_state() -> None:
    book = QuotaBook(clock=Clock())
    heard: list[str] = []
    book.listeners.append(lambda quota: heard.append(quota.provider))
    book.observe("anthropic", login(), raw(unified()))
    book.observe("zai", login(), raw({}))
    assert heard == ["anthropic"]


CONFIG = b"""version = 1
[providers.anthropic]
base_url = "https://api.anthropic.com"
key = { oauth_file = true }
[providers.zai]
base_url = "https://api.z.ai/api/anthropic"
key = { env = "ZAI_API_KEY" }
[[route]]
name = "main"
match = "*"
to = [{ provider = "anthropic", spill_at = { "7d" = 0.85, "5h" = 0.95 } }, { provider = "zai" }]
"""


def test_snapshot_is_the_health_shape_and_holds_no_secret() -> None:
    ruleset = load_bytes(CONFIG, file="routes.toml", env={"ZAI_API_KEY": "z"})
    assert spill_thresholds(ruleset) == {"anthropic": {"5h": 0.95, "7d": 0.85}}
    book = QuotaBook(clock=Clock())
    book.observe("anthropic", login(), raw(unified(claim="seven_day", h5=(0.42, NOW + 600), d7=(0.9, NOW + 86400))))
    [entry] = book.snapshot(ruleset)
    assert entry["provider"] == "anthropic" and str(entry["credential"]).startswith("oauth_file#")
    assert entry["status"] == "allowed" and entry["representative_claim"] == "seven_day"
    assert entry["reset"] == "2030-03-17T18:46:40Z" and entry["updated"] == "2030-03-17T17:46:40Z"
    windows = entry["windows"]
    assert isinstance(windows, dict)
    assert windows["5h"] == {"utilization": 0.42, "reset": "2030-03-17T17:56:40Z", "status": "allowed",
                             "surpassed_threshold": None}
    assert windows["7d"]["utilization"] == 0.9
    assert entry["spilling"] == ["7d"]
    assert SECRET not in json.dumps(entry)


def test_plan_reset_prefers_the_unified_reset_then_the_binding_window() -> None:
    headers = unified(status="rejected", claim="seven_day", d7=(1.0, NOW + 86400), h5=(0.5, NOW + 60))
    assert plan_reset(headers, NOW) == (NOW + 3600, "Claude plan limit reached (seven_day): anthropic-ratelimit-unified-reset")
    without = unified(status="rejected", claim="seven_day", reset=None, d7=(1.0, NOW + 86400), h5=(0.5, NOW + 60))
    assert plan_reset(without, NOW) == (NOW + 86400, "Claude plan limit reached (seven_day): its window's reset")
    assert plan_reset(unified(status="allowed_warning"), NOW) is None
    assert plan_reset({}, NOW) is None


def test_a_rejected_plan_cools_down_until_its_reset_not_retry_after() -> None:
    headers = {
        **unified(status="rejected", claim="five_hour", reset=NOW + 1800, h5=(1.0, NOW + 1800), d7=(0.6, NOW + 6 * 86400)),
        "retry-after": "5",
        "anthropic-ratelimit-requests-reset": "2030-03-17T17:47:20Z",
    }
    until, reason = cooldown_until(headers, NOW) or (0.0, "")
    assert until == NOW + 1800 and "Claude plan limit" in reason


def test_a_plan_window_reset_is_not_a_cooldown_end_by_itself() -> None:
    # A 429 that is not the plan's limit: the 7-day window's reset (days away) is no reason to wait.
    headers = unified(status="allowed", reset=None, d7=(0.5, NOW + 6 * 86400))
    assert cooldown_until(headers, NOW) is None
    assert cooldown_until({**headers, "retry-after": "3"}, NOW) == (NOW + 3, "retry-after: 3")


def test_a_rejected_plan_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    health = ProviderHealth(clock=Clock())
    headers = httpx.Headers(unified(status="rejected", reset=NOW + 1800, h5=(1.0, NOW + 1800)))
    with caplog.at_level(logging.WARNING, logger="gateway.resilience"):
        health.on_status("anthropic", 429, headers, "oauth_file#1")
        health.on_status("anthropic", 429, headers, "oauth_file#1")
    assert len(caplog.records) == 1 and "Claude plan limit reached" in caplog.records[0].getMessage()
    assert health.skip("anthropic", last=False, credential="oauth_file#1") is not None
    assert health.skip("anthropic", last=False, credential="oauth_file#2") is None
