"""What each upstream answer says about the plan or key behind it: the quota headers, kept per credential.

Anthropic answers a Claude login with ``anthropic-ratelimit-unified-*`` headers: the plan's
status (``allowed``, ``allowed_warning``, ``rejected``), when the binding limit resets, which
window binds (``representative-claim``), and per window (``5h``, ``7d``, ``7d_oi``, ...) its
utilization 0..1, reset time (epoch seconds) and status. An API key gets
``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``
(reset in RFC 3339) instead. Every answer head is read (streamed or not, success or error,
fallen back or not) and the latest one per (provider, credential) is kept::

    book = QuotaBook()
    book.observe("anthropic", credential, response.headers)     # after every upstream answer head
    book.spill("anthropic", credential, (("7d", 0.85),))         # Spill("7d", 0.91, ...) or None

Nothing here changes what the client receives: the headers go back unchanged.

Cost: an answer pays for one pass over its header names (tests/ops/bench_hotpath.py); the
matching headers are kept as they came and parsed only when something reads them (a target's
``spill_at``, ``/health``, the metrics flush once a second).

Credentials are named by a digest, never the secret: ``client#...`` for the client's own
(``Credential.fingerprint``), ``oauth_file#...`` / ``env#...`` / ``value#...`` for a configured
source. A Claude login's token changes when Claude Code refreshes it; its state then starts
afresh with the next answer.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from gateway.timefmt import human, iso
from gateway.upstream.credentials import Credential
from rules.model import KeySource, RuleSet

if TYPE_CHECKING:  # not imported at run time: `gateway doctor` reads /health's code without httpx
    import httpx

__all__ = [
    "API_LIMITS",
    "MAX_ENTRIES",
    "ApiLimit",
    "Quota",
    "QuotaBook",
    "QuotaListener",
    "Spill",
    "Window",
    "parse_reset",
    "plan_reset",
    "quota_headers",
    "spill_thresholds",
]

MAX_ENTRIES = 1024  # (provider, credential) pairs kept per worker; the least recently updated go first
API_LIMITS = ("requests", "tokens", "input-tokens", "output-tokens")

_PREFIX = b"anthropic-ratelimit-"
_PREFIX_LEN = len(_PREFIX)
_UNIFIED = "unified-"
_WINDOW_FIELDS = ("utilization", "reset", "status", "surpassed-threshold")
_WINDOW_NAME = re.compile(r"[a-z0-9_]{1,16}")
_MAX_WINDOWS = 8  # Anthropic sends four today; an answer cannot make us keep more
# representative-claim values -> the window names of the headers.
_CLAIM_WINDOWS = {"five_hour": "5h", "seven_day": "7d", "seven_day_overage_included": "7d_oi", "overage": "overage"}

# Called with every new state (the metrics copy the windows into gauges on their next flush).
QuotaListener = Callable[["Quota"], None]


@dataclass(frozen=True, slots=True)
class Window:
    """One quota window of a Claude plan as the latest answer put it."""

    utilization: float | None = None  # 0..1
    reset: float | None = None  # epoch seconds
    status: str | None = None  # allowed, allowed_warning, rejected
    surpassed_threshold: float | None = None

    def used(self) -> float | None:
        """The utilization, 1.0 for a window whose status is ``rejected`` whatever the figure."""
        return 1.0 if self.status == "rejected" else self.utilization


@dataclass(frozen=True, slots=True)
class ApiLimit:
    """One API-key limit (requests, tokens, input-tokens, output-tokens)."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # epoch seconds


@dataclass(frozen=True, slots=True)
class Spill:
    """Why a target steps aside: ``window`` at ``used`` >= ``threshold`` until ``reset``."""

    window: str
    used: float
    threshold: float
    reset: float

    @property
    def detail(self) -> str:
        """``7d window at 91% >= spill_at 85% until 2027-01-15 08:00:00 UTC``."""
        return (
            f"{self.window} window at {self.used:.0%} >= spill_at {self.threshold:.0%} "
            f"until {human(self.reset)}"
        )


def quota_headers(headers: httpx.Headers) -> list[tuple[bytes, bytes]]:
    """The ``anthropic-ratelimit-*`` headers of an answer head: lower-cased names, raw values, in order.

    One pass over the names: an answer without such headers (Z.AI, DeepSeek, a local model)
    costs this loop and nothing else; the values are decoded only when something reads them.
    """
    # httpx keeps each name lower-cased beside the one received (``Headers._list``); reading
    # those spares lowering every name again, half the cost of this pass (bench_hotpath.py).
    entries = getattr(headers, "_list", None)
    if entries is None:  # an httpx without it: the public, slower way
        return [(k.lower(), v) for k, v in headers.raw if k[:_PREFIX_LEN].lower() == _PREFIX]
    return [(k, v) for _, k, v in entries if k.startswith(_PREFIX)]


class Quota:
    """The quota headers of the latest answer for one (provider, credential), parsed on first read."""

    __slots__ = (
        "provider", "credential", "source", "headers", "updated",
        "_parsed", "status", "reset", "representative_claim", "windows", "limits",
    )

    def __init__(
        self, provider: str, credential: str, source: KeySource | None, headers: Sequence[tuple[bytes, bytes]],
        updated: float,
    ) -> None:
        self.provider = provider
        self.credential = credential  # a digest, never the secret
        self.source = source  # where the credential came from (described in view(): never a secret)
        self.headers = headers  # as quota_headers() found them
        self.updated = updated
        self._parsed = False
        self.status: str | None = None
        self.reset: float | None = None
        self.representative_claim: str | None = None
        self.windows: dict[str, Window] = {}
        self.limits: dict[str, ApiLimit] = {}

    def parse(self) -> Quota:
        """Fill ``status``, ``reset``, ``representative_claim``, ``windows`` and ``limits`` (once)."""
        if self._parsed:
            return self
        self._parsed = True
        windows: dict[str, dict[str, str]] = {}
        limits: dict[str, dict[str, str]] = {}
        for key, raw in self.headers:
            rest, value = key[_PREFIX_LEN:].decode("latin-1"), raw.decode("latin-1").strip()
            if rest.startswith(_UNIFIED):
                rest = rest[len(_UNIFIED):]
                if rest == "status":
                    self.status = value or None
                elif rest == "reset":
                    self.reset = parse_reset(value, self.updated)
                elif rest == "representative-claim":
                    self.representative_claim = value or None
                else:
                    for field in _WINDOW_FIELDS:
                        if rest.endswith(field) and rest[-len(field) - 1 : -len(field)] == "-":
                            window = rest[: -len(field) - 1]
                            if _WINDOW_NAME.fullmatch(window) and (window in windows or len(windows) < _MAX_WINDOWS):
                                windows.setdefault(window, {})[field] = value
                            break
            else:
                kind, _, field = rest.rpartition("-")
                if kind in API_LIMITS and field in ("limit", "remaining", "reset"):
                    limits.setdefault(kind, {})[field] = value
        self.windows = {
            name: Window(
                _number(fields.get("utilization")),
                parse_reset(fields.get("reset"), self.updated),
                fields.get("status") or None,
                _number(fields.get("surpassed-threshold")),
            )
            for name, fields in windows.items()
        }
        self.limits = {
            kind: ApiLimit(_integer(fields.get("limit")), _integer(fields.get("remaining")),
                           parse_reset(fields.get("reset"), self.updated))
            for kind, fields in limits.items()
        }
        return self

    def spill(self, spill_at: Iterable[tuple[str, float]], now: float) -> Spill | None:
        """The first window of ``spill_at`` at or above its value while its reset is ahead."""
        windows = self.parse().windows
        for name, threshold in spill_at:
            window = windows.get(name)
            if window is None or window.reset is None or window.reset <= now:
                continue  # after the reset the old figure no longer counts; no reset: cannot tell
            used = window.used()
            if used is not None and used >= threshold:
                return Spill(name, used, threshold, window.reset)
        return None

    def plan_reset(self) -> tuple[float, str] | None:
        """When a Claude plan that answered ``rejected`` may be asked again, and why; else None.

        The unified reset (the binding limit's), else the representative window's, else the
        latest reset of a rejected window.
        """
        self.parse()
        if self.status != "rejected":
            return None
        claim = self.representative_claim
        binding = f" ({claim})" if claim else ""
        if self.reset is not None:
            return self.reset, f"Claude plan limit reached{binding}: anthropic-ratelimit-unified-reset"
        window = self.windows.get(_CLAIM_WINDOWS.get(claim or "", claim or ""))
        if window is not None and window.reset is not None:
            return window.reset, f"Claude plan limit reached{binding}: its window's reset"
        resets = [w.reset for w in self.windows.values() if w.status == "rejected" and w.reset is not None]
        if resets:
            return max(resets), "Claude plan limit reached: the rejected windows' reset"
        return None

    def view(self, thresholds: Mapping[str, float], now: float) -> dict[str, object]:
        """The /health entry: never a secret, times in ``iso``; ``spilling`` per ``thresholds``."""
        self.parse()
        spilling = [name for name, threshold in thresholds.items() if self.spill(((name, threshold),), now)]
        entry: dict[str, object] = {
            "provider": self.provider,
            "credential": self.credential,
            "source": self.source.describe() if self.source is not None else None,
            "status": self.status,
            "reset": _iso(self.reset),
            "representative_claim": self.representative_claim,
            "windows": {
                name: {
                    "utilization": w.utilization,
                    "reset": _iso(w.reset),
                    "status": w.status,
                    "surpassed_threshold": w.surpassed_threshold,
                }
                for name, w in self.windows.items()
            },
            "spilling": spilling,
            "updated": iso(self.updated),
        }
        if self.limits:
            entry["limits"] = {
                kind: {"limit": lim.limit, "remaining": lim.remaining, "reset": _iso(lim.reset)}
                for kind, lim in self.limits.items()
            }
        return entry


class QuotaBook:
    """The latest quota state per (provider, credential) of one worker, at most ``capacity`` of them."""

    def __init__(self, capacity: int = MAX_ENTRIES, clock: Callable[[], float] = time.time) -> None:
        self._capacity = capacity
        self._clock = clock
        self._entries: dict[tuple[str, str], Quota] = {}  # in update order: the oldest first
        self._names: dict[tuple[tuple[str, str], ...], str] = {}
        self.listeners: list[QuotaListener] = []

    def credential_name(self, credential: Credential) -> str:
        """A digest that names ``credential`` without revealing it (cached per credential)."""
        if credential.fingerprint:
            return credential.fingerprint
        if credential.source is None:
            return "none"  # a keyless provider (a local model): one state per provider
        secret = credential.headers
        name = self._names.get(secret)
        if name is None:
            if len(self._names) >= self._capacity:
                self._names.clear()
            digest = hashlib.blake2b(repr(secret).encode(), digest_size=6).hexdigest()
            name = self._names[secret] = f"{credential.source.kind}#{digest}"
        return name

    def observe(self, provider: str, credential: Credential, headers: httpx.Headers) -> Quota | None:
        """Keep what an answer head says about the plan or key; None when it says nothing."""
        found = quota_headers(headers)
        if not found:
            return None
        name = self.credential_name(credential)
        quota = Quota(provider, name, credential.source, found, self._clock())
        key = (provider, name)
        entries = self._entries
        entries.pop(key, None)  # re-inserted last: dicts keep insertion order
        entries[key] = quota
        if len(entries) > self._capacity:
            del entries[next(iter(entries))]
        for listener in self.listeners:
            listener(quota)
        return quota

    def get(self, provider: str, credential: Credential) -> Quota | None:
        """The latest state for ``provider`` and ``credential``, if an answer carried one."""
        return self._entries.get((provider, self.credential_name(credential))) if self._entries else None

    def spill(self, provider: str, credential: Credential, spill_at: Iterable[tuple[str, float]]) -> Spill | None:
        """Whether a target with ``spill_at`` steps aside for this credential now (see ``Quota.spill``)."""
        quota = self.get(provider, credential)
        return None if quota is None else quota.spill(spill_at, self._clock())

    def entries(self) -> list[Quota]:
        """Every state kept, oldest update first."""
        return list(self._entries.values())

    def snapshot(self, ruleset: RuleSet) -> list[dict[str, object]]:
        """The /health ``quota`` list, by provider then credential; ``spilling`` per the rules' ``spill_at``."""
        thresholds = spill_thresholds(ruleset)
        now = self._clock()
        entries = sorted(self._entries.values(), key=lambda q: (q.provider, q.credential))
        return [q.view(thresholds.get(q.provider, {}), now) for q in entries]


def spill_thresholds(ruleset: RuleSet) -> dict[str, dict[str, float]]:
    """Per provider, per window, the lowest ``spill_at`` value any target of the rules sets."""
    out: dict[str, dict[str, float]] = {}
    for route in ruleset.routes:
        for target in route.to:
            for window, threshold in target.spill_at:
                windows = out.setdefault(target.provider.name, {})
                windows[window] = min(threshold, windows.get(window, threshold))
    return out


def plan_reset(headers: Mapping[str, str], now: float) -> tuple[float, str] | None:
    """For a 429's headers: when a Claude plan that answered ``rejected`` resets, and why; else None."""
    status = headers.get("anthropic-ratelimit-unified-status")
    if status is None or status.strip() != "rejected":
        return None
    found = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in headers.items()
        if k.lower().startswith("anthropic-ratelimit-")
    ]
    return Quota("", "", None, found, now).plan_reset()


def _number(value: str | None) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _integer(value: str | None) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def parse_reset(value: str | None, now: float) -> float | None:
    """A reset moment as epoch seconds: epoch seconds (the unified headers), seconds from ``now``
    (``retry-after``), RFC 3339 (the API-key headers) or an HTTP date; None for anything else."""
    value = (value or "").strip()
    if not value:
        return None
    number = _number(value)
    if number is not None:
        if number < 0:
            return None
        return number if number > 1_000_000_000 else now + number
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _iso(moment: float | None) -> str | None:
    return iso(moment) if moment is not None else None
