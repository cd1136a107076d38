"""Cooldowns and circuits of gateway.upstream.provider_health, driven by a fake clock."""

from __future__ import annotations

from gateway.upstream.provider_health import (
    CIRCUIT_BASE_S,
    CIRCUIT_THRESHOLD,
    ProviderHealth,
    cooldown_until,
)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_retry_after_seconds_sets_the_cooldown_end() -> None:
    assert cooldown_until({"retry-after": "30"}, 1000.0) == (1030.0, "retry-after: 30")


def test_retry_after_http_date_is_understood() -> None:
    until, _ = cooldown_until({"retry-after": "Wed, 21 Oct 2037 07:28:00 GMT"}, 2139722880.0 - 100) or (0, "")
    assert until == 2139722880.0


def test_retry_after_wins_over_ratelimit_reset_headers() -> None:
    headers = {"retry-after": "5", "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z"}
    assert cooldown_until(headers, 1000.0) == (1005.0, "retry-after: 5")


def test_latest_ratelimit_reset_is_used_without_retry_after() -> None:
    now = 1_900_000_000.0
    headers = {
        "anthropic-ratelimit-requests-reset": "2030-03-17T17:46:50Z",
        "anthropic-ratelimit-tokens-reset": "2030-03-17T17:47:20Z",
        "anthropic-ratelimit-requests-remaining": "0",
    }
    found = cooldown_until(headers, now)
    assert found is not None
    assert found[0] == 1_900_000_040.0
    assert found[1] == "anthropic-ratelimit-tokens-reset: 2030-03-17T17:47:20Z"


def test_unified_reset_in_epoch_seconds_is_understood() -> None:
    assert cooldown_until({"anthropic-ratelimit-unified-reset": "1900000600"}, 1_900_000_000.0) == (
        1_900_000_600.0,
        "anthropic-ratelimit-unified-reset: 1900000600",
    )


def test_no_hint_or_past_hint_means_no_cooldown() -> None:
    assert cooldown_until({}, 1000.0) is None
    assert cooldown_until({"retry-after": "0"}, 1000.0) is None
    assert cooldown_until({"retry-after": "soon"}, 1000.0) is None
    assert cooldown_until({"anthropic-ratelimit-requests-reset": "2001-01-01T00:00:00Z"}, 1e9 + 1e8) is None


def test_absurd_cooldown_is_capped_at_eight_days() -> None:
    until, _ = cooldown_until({"retry-after": str(10**9 - 1)}, 0.0) or (0, "")
    assert until == 8 * 24 * 3600


def test_429_with_retry_after_skips_provider_until_then_except_as_last_target() -> None:
    clock = Clock()
    health = ProviderHealth(clock)
    health.on_status("anthropic", 429, {"retry-after": "30"})
    assert health.skip("anthropic", last=False) is not None
    assert health.skip("anthropic", last=True) is None
    assert health.skip("zai", last=False) is None
    clock.now += 29.9
    assert health.skip("anthropic", last=False) is not None
    clock.now += 0.2
    assert health.skip("anthropic", last=False) is None
    assert health.snapshot()["cooldowns"] == []


def test_cooldown_is_per_credential() -> None:
    health = ProviderHealth(Clock())
    health.on_status("anthropic", 429, {"retry-after": "30"}, "client#aaa")
    assert health.skip("anthropic", last=False, credential="client#aaa") is not None
    assert health.skip("anthropic", last=False, credential="client#bbb") is None


def test_529_cools_down_but_500_and_plain_429_do_not() -> None:
    health = ProviderHealth(Clock())
    health.on_status("a", 529, {"retry-after": "10"})
    health.on_status("b", 500, {"retry-after": "10"})
    health.on_status("c", 429, {})
    assert [health.skip(p, last=False) is not None for p in "abc"] == [True, False, False]


def test_skip_says_why() -> None:
    health = ProviderHealth(Clock(1_800_000_000.0))
    health.on_status("anthropic", 429, {"retry-after": "30"})
    assert health.skip("anthropic", last=False) == (
        "cooling down until 2027-01-15 08:00:30 UTC after a 429 (retry-after: 30)"
    )


def test_snapshot_shows_cooldown_end_and_reason() -> None:
    health = ProviderHealth(Clock(1_800_000_000.0))
    health.on_status("anthropic", 429, {"retry-after": "30"})
    (entry,) = health.snapshot()["cooldowns"]  # type: ignore[misc]
    assert entry["provider"] == "anthropic"
    assert entry["until"] == "2027-01-15T08:00:30Z"
    assert entry["seconds_left"] == 30.0
    assert entry["reason"] == "retry-after: 30"


def test_circuit_opens_after_threshold_and_probes_half_open() -> None:
    clock = Clock()
    health = ProviderHealth(clock)
    for _ in range(CIRCUIT_THRESHOLD - 1):
        health.on_connect_error("zai")
    assert health.skip("zai", last=False) is None
    health.on_connect_error("zai")
    assert health.skip("zai", last=False) is not None
    clock.now += CIRCUIT_BASE_S + 0.01
    assert health.skip("zai", last=False) is None  # this request is the probe
    assert health.skip("zai", last=False) is not None  # others wait for the probe
    health.on_connect_error("zai")  # the probe failed: open again, for twice as long
    clock.now += CIRCUIT_BASE_S + 0.01
    assert health.skip("zai", last=False) is not None
    clock.now += CIRCUIT_BASE_S
    assert health.skip("zai", last=False) is None  # probe again
    health.on_status("zai", 200, {})
    assert health.skip("zai", last=False) is None
    assert health.snapshot()["circuits"] == []


def test_abandoned_probe_lets_the_next_request_probe() -> None:
    clock = Clock()
    health = ProviderHealth(clock)
    for _ in range(CIRCUIT_THRESHOLD):
        health.on_connect_error("zai")
    clock.now += CIRCUIT_BASE_S + 0.01
    assert health.skip("zai", last=False) is None
    health.on_probe_abandoned("zai")
    assert health.skip("zai", last=False) is None


def test_listeners_hear_cooldowns_and_circuits() -> None:
    clock = Clock()
    health = ProviderHealth(clock)
    heard: list[tuple[str, str]] = []
    health.listeners.append(lambda kind, provider: heard.append((kind, provider)))
    health.on_status("a", 429, {"retry-after": "1"})
    clock.now += 2
    health.skip("a", last=False)
    for _ in range(CIRCUIT_THRESHOLD):
        health.on_connect_error("b")
    health.on_status("b", 200, {})
    assert heard == [("cooldown", "a"), ("cooldown_end", "a"), ("circuit_open", "b"), ("circuit_close", "b")]


def test_a_cooldown_the_caller_works_out_is_kept_until_then_for_that_credential_only() -> None:
    clock = Clock(1_800_000_000.0)
    health = ProviderHealth(clock)
    health.cool_down("zai", "cred-a", clock.now + 3600, 429, "usage limit reached, resets at 19:00")

    assert health.skip("zai", last=False, credential="cred-a") is not None
    assert "usage limit reached" in (health.skip("zai", last=False, credential="cred-a") or "")
    assert health.skip("zai", last=False, credential="cred-b") is None
    assert health.skip("zai", last=True, credential="cred-a") is None
    clock.now += 3601
    assert health.skip("zai", last=False, credential="cred-a") is None


def test_a_cooldown_in_the_past_is_ignored() -> None:
    clock = Clock(1_800_000_000.0)
    health = ProviderHealth(clock)
    health.cool_down("zai", "cred-a", clock.now - 1, 429, "stale")
    assert health.skip("zai", last=False, credential="cred-a") is None
    assert health.snapshot()["cooldowns"] == []


def test_an_unusable_credential_is_skipped_with_its_reason_until_the_bound() -> None:
    from gateway.upstream.provider_health import UNUSABLE_S

    clock = Clock(1_800_000_000.0)
    health = ProviderHealth(clock)
    heard: list[tuple[str, str]] = []
    health.listeners.append(lambda kind, provider: heard.append((kind, provider)))
    health.mark_unusable("zai", "", "Z.AI code 1309: plan expired")

    why = health.skip("zai", last=False)
    assert why is not None and "Z.AI code 1309: plan expired" in why
    assert health.skip("zai", last=False, credential="client#other") is None  # another credential
    assert health.skip("zai", last=True) is None  # the last target is always asked
    [entry] = health.snapshot()["unusable"]  # type: ignore[misc]
    assert entry["provider"] == "zai" and entry["credential"] is None and entry["reason"] == "Z.AI code 1309: plan expired"
    assert heard == [("unusable", "zai")]
    clock.now += UNUSABLE_S - 1
    assert health.skip("zai", last=False) is not None
    clock.now += 2
    assert health.skip("zai", last=False) is None and health.snapshot()["unusable"] == []


def test_a_config_reload_ends_every_unusable_credential() -> None:
    health = ProviderHealth(Clock())
    health.mark_unusable("zai", "", "Z.AI code 1113: arrears")
    health.cool_down("zai", "", Clock().now + 600, 429, "usage limit")
    health.config_reloaded()
    assert health.snapshot()["unusable"] == []
    # A cooldown is the provider's own word on when to come back: a reload does not end it.
    assert "usage limit" in (health.skip("zai", last=False) or "")
