"""Provider health as this worker sees it: cooldowns after rate limits, circuits after outages.

Cooldown: a 429 or 529 that says when to come back (``retry-after``, the
``anthropic-ratelimit-*-reset`` headers, or a Claude plan's reset when the plan answered
``rejected``) puts the provider, for that credential, in cooldown until then. A cooling
provider is skipped, unless it is the route's last target, so users do not wait on a
known-limited provider at every request. Cooldowns are per credential: on a LAN
where each client passes its own login through, one user's exhausted subscription does not
send everyone else to the fallback.

Circuit: ``CIRCUIT_THRESHOLD`` connect failures in a row open the provider's circuit for a
short period that doubles on every failed probe (``CIRCUIT_BASE_S`` up to ``CIRCUIT_MAX_S``).
When the period ends the circuit is half-open: one request probes the provider while others
skip it; success closes the circuit, failure opens it again for longer.

Unusable: a credential a provider refused for good (Z.AI's arrears and expired-plan codes,
``gateway.wire.errors``) is skipped like a cooling one, with the reason, until the config
reloads (the key may be new) or ``UNUSABLE_S`` has passed. Only a person can fix such an
account, so asking at every request only fails again; the bound lets a paid-up account serve
again without a restart, at the price of one refused request per hour and worker at most.

Entering and leaving both are logged when they happen (a timer logs the end).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.timefmt import human, iso
from gateway.upstream.quota import parse_reset, plan_reset

__all__ = [
    "CIRCUIT_BASE_S",
    "CIRCUIT_MAX_S",
    "CIRCUIT_THRESHOLD",
    "COOLDOWN_STATUSES",
    "Listener",
    "MAX_COOLDOWN_S",
    "ProviderHealth",
    "UNUSABLE_S",
    "cooldown_until",
]

log = logging.getLogger("gateway.resilience")

COOLDOWN_STATUSES = frozenset({429, 529})
MAX_COOLDOWN_S = 8 * 24 * 3600.0  # a weekly limit plus slack; anything longer is a bogus header
CIRCUIT_THRESHOLD = 3
CIRCUIT_BASE_S = 2.0
CIRCUIT_MAX_S = 300.0
UNUSABLE_S = 3600.0  # an unusable credential is asked again after this (see the module docstring)

# Events for metrics: (kind, provider), kind in "cooldown", "cooldown_end", "circuit_open",
# "circuit_close", "unusable".
Listener = Callable[[str, str], None]


def cooldown_until(headers: Mapping[str, str], now: float) -> tuple[float, str] | None:
    """When a rate-limited provider may be asked again, and which header said so.

    A Claude plan that answered ``rejected`` comes back when the plan resets
    (``gateway.upstream.quota.plan_reset``): such a 429 carries no useful ``retry-after``.
    Otherwise ``retry-after`` is the server's own advice and wins; else the latest of the
    ``anthropic-ratelimit-*-reset`` moments (every exhausted limit has reset by then), leaving
    out a plan's per-window resets (``-unified-7d-reset``...), which say when each window
    resets, not when the limit that answered does (the 7-day one would be days away).
    """
    plan = plan_reset(headers, now)
    if plan is not None:
        return min(plan[0], now + MAX_COOLDOWN_S), plan[1]
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        until = parse_reset(retry_after, now)
        if until is not None and until > now:
            return min(until, now + MAX_COOLDOWN_S), f"retry-after: {retry_after.strip()}"
    best: tuple[float, str] | None = None
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("anthropic-ratelimit-") and lower.endswith("-reset") and not _window_reset(lower):
            until = parse_reset(value, now)
            if until is not None and until > now and (best is None or until > best[0]):
                best = (until, f"{lower}: {value.strip()}")
    if best is None:
        return None
    return min(best[0], now + MAX_COOLDOWN_S), best[1]


def _window_reset(name: str) -> bool:
    """``anthropic-ratelimit-unified-5h-reset`` and the like: one window's reset, not the plan's."""
    return name.startswith("anthropic-ratelimit-unified-") and name != "anthropic-ratelimit-unified-reset"


@dataclass(slots=True)
class _Cooldown:
    until: float
    reason: str
    status: int


@dataclass(slots=True)
class _Unusable:
    since: float
    until: float
    reason: str


@dataclass(slots=True)
class _Circuit:
    failures: int = 0  # consecutive connect failures
    open_until: float = 0.0  # 0: closed
    period: float = 0.0  # the current open period, doubled on each failed probe
    probing: bool = False  # half-open, one probe in flight


class ProviderHealth:
    """Cooldowns and circuits of one worker. Keys: provider name (+ credential fingerprint for cooldowns)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._cooldowns: dict[tuple[str, str], _Cooldown] = {}
        self._circuits: dict[str, _Circuit] = {}
        self._unusable: dict[tuple[str, str], _Unusable] = {}
        self.listeners: list[Listener] = []

    # --- decisions -------------------------------------------------------------------------

    def skip(self, provider: str, *, last: bool, credential: str = "") -> str | None:
        """Why ``provider`` should not be asked now, or None. The route's last target is always asked."""
        if last or (not self._cooldowns and not self._circuits and not self._unusable):
            return None
        now = self._clock()
        cooldown = self._cooldowns.get((provider, credential))
        if cooldown is not None:
            if cooldown.until > now:
                return f"cooling down until {human(cooldown.until)} after a {cooldown.status} ({cooldown.reason})"
            self._end_cooldown((provider, credential))
        unusable = self._unusable.get((provider, credential))
        if unusable is not None:
            if unusable.until > now:
                return f"its credential is unusable ({unusable.reason}); asked again after {human(unusable.until)}"
            del self._unusable[(provider, credential)]
        circuit = self._circuits.get(provider)
        if circuit is not None and circuit.open_until:
            if circuit.open_until > now:
                return f"unreachable {circuit.failures} times in a row; next try after {human(circuit.open_until)}"
            if circuit.probing:
                return "unreachable recently; another request is probing it"
            circuit.probing = True  # this request is the probe
        return None

    # --- outcomes ----------------------------------------------------------------------------

    def on_status(self, provider: str, status: int, headers: Mapping[str, str], credential: str = "") -> None:
        """An upstream answered (any status): the connection works; 429/529 may start a cooldown."""
        circuit = self._circuits.get(provider)
        if circuit is not None:
            self._close_circuit(provider, circuit)
        if status in COOLDOWN_STATUSES:
            now = self._clock()
            found = cooldown_until(headers, now)
            if found is not None:
                self._start_cooldown((provider, credential), _Cooldown(found[0], found[1], status), now)

    def cool_down(self, provider: str, credential: str, until: float, status: int, reason: str) -> None:
        """Skip ``provider`` for ``credential`` until ``until`` (epoch seconds), as after a 429.

        For limits an answer names in its own way (a Claude plan's unified reset, a Z.AI
        usage-limit message): the caller works out the moment, this keeps and ends the cooldown.
        """
        now = self._clock()
        if until > now:
            self._start_cooldown((provider, credential), _Cooldown(min(until, now + MAX_COOLDOWN_S), reason, status), now)

    def mark_unusable(self, provider: str, credential: str, reason: str) -> None:
        """Skip ``provider`` for ``credential`` until the config reloads or ``UNUSABLE_S`` passed.

        For a refusal only a person can fix (arrears, an expired plan): ``reason`` says which.
        """
        now = self._clock()
        key = (provider, credential)
        if key not in self._unusable:
            log.warning(
                "provider '%s' refused its credential (%s): skipped until the config reloads or %s",
                provider, reason, human(now + UNUSABLE_S),
            )
            self._emit("unusable", provider)
        self._unusable[key] = _Unusable(now, now + UNUSABLE_S, reason)

    def config_reloaded(self) -> None:
        """A new config is served: credentials marked unusable get another chance (the key may be new)."""
        if self._unusable:
            log.info("config reloaded: asking again the providers whose credential was unusable")
            self._unusable.clear()

    def on_connect_error(self, provider: str) -> None:
        """An upstream could not be reached (refused, DNS, connect timeout)."""
        circuit = self._circuits.setdefault(provider, _Circuit())
        circuit.failures += 1
        now = self._clock()
        if circuit.probing or (not circuit.open_until and circuit.failures >= CIRCUIT_THRESHOLD):
            circuit.period = min(CIRCUIT_MAX_S, circuit.period * 2 if circuit.period else CIRCUIT_BASE_S)
            circuit.open_until = now + circuit.period
            circuit.probing = False
            log.warning(
                "provider '%s' unreachable %d times in a row: skipped for %g s (until %s), then probed",
                provider, circuit.failures, circuit.period, human(circuit.open_until),
            )
            self._emit("circuit_open", provider)

    def on_probe_abandoned(self, provider: str) -> None:
        """The probe request ended without an answer or connect error (e.g. the client left)."""
        circuit = self._circuits.get(provider)
        if circuit is not None:
            circuit.probing = False

    # --- bookkeeping -------------------------------------------------------------------------

    def _start_cooldown(self, key: tuple[str, str], cooldown: _Cooldown, now: float) -> None:
        previous = self._cooldowns.get(key)
        self._cooldowns[key] = cooldown
        if previous is None or previous.until <= now:
            log.warning(
                "provider '%s' answered %d: cooling down until %s (%s); requests go to the next target",
                key[0], cooldown.status, human(cooldown.until), cooldown.reason,
            )
            self._emit("cooldown", key[0])
        self._schedule_end(key, cooldown.until - now)

    def _schedule_end(self, key: tuple[str, str], delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (unit tests): the end is noticed lazily by skip()
        loop.call_later(max(delay, 0.0), self._expire, key)

    def _expire(self, key: tuple[str, str]) -> None:
        cooldown = self._cooldowns.get(key)
        if cooldown is not None and cooldown.until <= self._clock():
            self._end_cooldown(key)

    def _end_cooldown(self, key: tuple[str, str]) -> None:
        if self._cooldowns.pop(key, None) is not None:
            log.info("provider '%s' cooldown over: asking it again", key[0])
            self._emit("cooldown_end", key[0])

    def _close_circuit(self, provider: str, circuit: _Circuit) -> None:
        was_open = bool(circuit.open_until)
        del self._circuits[provider]
        if was_open:
            log.info("provider '%s' answers again: circuit closed", provider)
            self._emit("circuit_close", provider)

    def _emit(self, kind: str, provider: str) -> None:
        for listener in self.listeners:
            try:
                listener(kind, provider)
            except Exception:
                log.exception("resilience listener failed")

    def snapshot(self) -> dict[str, object]:
        """Active cooldowns and circuits with their end times, for /health."""
        now = self._clock()
        cooldowns = [
            {
                "provider": provider,
                "credential": credential or None,
                "until": iso(c.until),
                "seconds_left": round(c.until - now, 1),
                "status": c.status,
                "reason": c.reason,
            }
            for (provider, credential), c in self._cooldowns.items()
            if c.until > now
        ]
        circuits = [
            {
                "provider": provider,
                "state": "half-open" if c.open_until and c.open_until <= now else ("open" if c.open_until else "closed"),
                "consecutive_failures": c.failures,
                "until": iso(c.open_until)
                if c.open_until
                else None,
            }
            for provider, c in self._circuits.items()
        ]
        unusable = [
            {
                "provider": provider,
                "credential": credential or None,
                "since": iso(u.since),
                "until": iso(u.until),
                "reason": u.reason,
            }
            for (provider, credential), u in self._unusable.items()
            if u.until > now
        ]
        return {"cooldowns": cooldowns, "circuits": circuits, "unusable": unusable}
