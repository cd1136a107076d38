"""The dashboard's JSON document (``GET /dashboard.json``), built from /health's and the ledger's.

A pure function of its inputs, so a test can hand it any /health document (with or without
the Claude plan's ``quota``, issue 11) and read what the page would show. Shape (fields may be
added, never changed)::

    {"now": "...Z", "gateway": {"version", "pid", "status", "config": {...}},
     "providers": [{"name", "base_url", "state", "detail", "until", "concurrency"}],
     "quota": [{"provider", "credential", "status", "reset", "windows": [{"name", "utilization",
                "reset", "status"}], "spilling": [...]}],
     "routes": [{"name", "match", "when", "targets": [{"provider", "model", "spill_at"}], "fallback_on"}],
     "ledger": {"state": "ok" | "failing" | "off", "path", "error", "written", "dropped"},
     "recent": [{"ts", "request_class", "client_model", "provider", ...}],
     "charts": {"hour_starts", "day_labels", "providers": {NAME: {"hour_requests", ...}}}}

``state`` is ``ready``, ``cooling`` (a 429/529 said when to come back: ``until``), ``circuit_open``
(unreachable: skipped until ``until``), ``probing`` (one request is trying it again),
``spilling`` (its plan window is past a target's ``spill_at``) or ``no_credential``.

No secret: providers are named with their base URL only (a base URL never holds credentials:
the schema refuses them), quota entries carry credential digests, and every field is copied
by name, so whatever else /health grows is not passed on by accident.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.timefmt import iso
from rules.model import RuleSet

__all__ = ["dashboard_document", "provider_states", "quota_view", "routes_view"]

_STATE_ORDER = ("circuit_open", "probing", "cooling", "spilling", "no_credential")


def quota_view(health: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The plan windows of /health's ``quota`` (absent: none), known fields only."""
    out = []
    for entry in health.get("quota") or ():
        if not isinstance(entry, Mapping):
            continue
        windows = entry.get("windows")
        if not isinstance(windows, Mapping) or not windows:
            continue  # an API key's limits (or nothing): no Claude plan to draw
        out.append({
            "provider": str(entry.get("provider", "")),
            "credential": entry.get("credential"),
            "status": entry.get("status"),
            "reset": entry.get("reset"),
            "windows": [
                {
                    "name": str(name),
                    "utilization": window.get("utilization"),
                    "reset": window.get("reset"),
                    "status": window.get("status"),
                }
                for name, window in windows.items()
                if isinstance(window, Mapping)
            ],
            "spilling": [str(w) for w in entry.get("spilling") or ()],
        })
    return out


def provider_states(health: Mapping[str, Any], quota: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each provider's state as this worker sees it (the module docstring), worst first within a provider."""
    resilience = health.get("resilience") or {}
    cooldowns: dict[str, list[Mapping[str, Any]]] = {}
    for cooldown in resilience.get("cooldowns", ()):
        cooldowns.setdefault(cooldown["provider"], []).append(cooldown)
    circuits = {c["provider"]: c for c in resilience.get("circuits", ())}
    concurrency = resilience.get("concurrency") or {}
    spilling: dict[str, list[str]] = {}
    for entry in quota:
        spilling.setdefault(entry["provider"], []).extend(entry["spilling"])

    out = []
    for name, provider in (health.get("providers") or {}).items():
        found: dict[str, tuple[str, str | None]] = {}
        circuit = circuits.get(name)
        if circuit is not None and circuit.get("state") == "open":
            failures = circuit.get("consecutive_failures")
            found["circuit_open"] = (f"unreachable {failures} times in a row", circuit.get("until"))
        elif circuit is not None and circuit.get("state") == "half-open":
            found["probing"] = ("unreachable recently; trying it again", None)
        if name in cooldowns:
            entries = cooldowns[name]
            last = max(entries, key=lambda c: str(c.get("until")))
            who = f" for {len(entries)} credentials" if len(entries) > 1 else ""
            found["cooling"] = (f"answered {last.get('status')}{who}: {last.get('reason')}", last.get("until"))
        if spilling.get(name):
            windows = ", ".join(dict.fromkeys(spilling[name]))
            found["spilling"] = (f"past spill_at on the {windows} window", None)
        if provider.get("credential_available") is False:
            found["no_credential"] = ("no key source has a credential now", None)
        state = next((s for s in _STATE_ORDER if s in found), "ready")
        detail, until = found.get(state, ("", None))
        out.append({
            "name": name,
            "base_url": provider.get("base_url"),
            "state": state,
            "detail": detail,
            "until": until,
            "also": [s for s in _STATE_ORDER if s in found and s != state],
            "concurrency": concurrency.get(name),
        })
    return out


def routes_view(ruleset: RuleSet) -> list[dict[str, Any]]:
    """The routes in order: patterns, conditions in words, targets with their spill_at."""
    return [
        {
            "name": route.name,
            "match": list(route.match),
            "when": route.when.describe() if route.when is not None else "",
            "targets": [
                {
                    "provider": target.provider.name,
                    "model": target.model,
                    "spill_at": ", ".join(f"{window} at {value:.0%}" for window, value in target.spill_at),
                }
                for target in route.to
            ],
            "fallback_on": sorted(route.fallback_on),
        }
        for route in ruleset.routes
    ]


def dashboard_document(
    health: Mapping[str, Any],
    ruleset: RuleSet,
    usage: Mapping[str, Any],
    ledger: Mapping[str, Any],
    now: float,
) -> dict[str, Any]:
    """The document the page polls. ``health``: a full /health report; ``usage``: the ledger
    reader's ``{"recent", "charts"}`` (or ``{"error"}``); ``ledger``: the writer's status."""
    config = health.get("config") or {}
    last_error = config.get("last_error")
    quota = quota_view(health)
    return {
        "now": iso(now, millis=True),
        "gateway": {
            "version": health.get("version"),
            "pid": health.get("pid"),
            "status": health.get("status"),
            "config": {
                "source": config.get("source"),
                "path": config.get("path"),
                "generation": config.get("generation"),
                "loaded_at": config.get("loaded_at"),
                "last_error": last_error.get("message") if isinstance(last_error, Mapping) else None,
            },
        },
        "providers": provider_states(health, quota),
        "quota": quota,
        "routes": routes_view(ruleset),
        "ledger": {**ledger, "read_error": usage.get("error")},
        "recent": list(usage.get("recent") or ()),
        "charts": usage.get("charts"),
    }
