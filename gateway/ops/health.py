"""``GET /health``: what this worker serves, where Haiku, Sonnet and Opus go, and what is wrong.

Never a secret: key sources are described (``env ZAI_API_KEY``, ``value sk-...abcd``) and
credentials are only said to be available or not.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from gateway import __version__
from gateway.reload.live import LiveConfig
from gateway.timefmt import iso
from gateway.upstream.credentials import CredentialResolver
from gateway.upstream.limits import Limits
from gateway.upstream.provider_health import ProviderHealth
from gateway.upstream.quota import QuotaBook
from rules.model import RuleSet

__all__ = ["CANONICAL_TIERS", "health_report", "resolve_view", "tiers_view"]

# The names Claude Code sends for its three tiers today, unless ANTHROPIC_DEFAULT_*_MODEL is set.
CANONICAL_TIERS = {
    "haiku": "claude-haiku-5-5",
    "sonnet": "claude-sonnet-5-5",
    "opus": "claude-opus-5-5",
}


_HIDDEN = "the last reload failed; the message is in the gateway's log and in /health with a client key"


def resolve_view(ruleset: RuleSet, model: str) -> dict[str, Any]:
    """Where one model name goes: route and targets."""
    route = ruleset.resolve(model)
    if route is None:
        return {"model": model, "route": None, "error": "no route matches"}
    return {
        "model": model,
        "route": route.name,
        "targets": [
            {"provider": t.provider.name, "upstream_model": t.upstream_model(model)} for t in route.to
        ],
    }


def tiers_view(ruleset: RuleSet, env: Mapping[str, str]) -> dict[str, Any]:
    """Haiku, Sonnet and Opus: the canonical names and any ANTHROPIC_DEFAULT_*_MODEL override."""
    out: dict[str, Any] = {}
    for tier, canonical in CANONICAL_TIERS.items():
        view = resolve_view(ruleset, canonical)
        override = env.get(f"ANTHROPIC_DEFAULT_{tier.upper()}_MODEL")
        if override:
            view["override"] = {"env": f"ANTHROPIC_DEFAULT_{tier.upper()}_MODEL", **resolve_view(ruleset, override)}
        out[tier] = view
    return out


def health_report(
    live: LiveConfig,
    credentials: CredentialResolver,
    provider_health: ProviderHealth,
    env: Mapping[str, str] | None = None,
    *,
    details: bool = True,
    limits: Limits | None = None,
    quota: QuotaBook | None = None,
) -> dict[str, Any]:
    """The /health document. ``details=False`` leaves out providers, routes, tiers and quota, and
    gives config errors and warnings by file and line only: their text names providers, variables
    and values, which a caller without a client key on a LAN bind is not to read.

    ``quota``: per (provider, credential digest) what the latest answer said about the plan
    (``QuotaBook.snapshot``); ``gateway statusline`` reads ``provider`` and
    ``windows.5h.utilization`` / ``windows.7d.utilization`` of its entries.
    """
    env = os.environ if env is None else env
    current = live.current
    ruleset = current.ruleset
    source = ruleset.source
    failure = live.last_error
    report: dict[str, Any] = {
        "status": "ok" if failure is None else "degraded",
        "version": __version__,
        "pid": os.getpid(),
        "config": {
            "source": source.kind,
            "reason": current.reason,
            "path": source.path,
            "sha256": source.sha256,
            "loaded_at": iso(current.loaded_at),
            "generation": current.generation,
            "warnings": [w.render() if details else f"{w.file}:{w.line}" for w in ruleset.warnings],
            "last_error": None
            if failure is None
            else {
                "message": failure.message if details else _HIDDEN,
                "file": failure.file,
                "line": failure.line,
                "path": failure.path if details else None,
                "at": iso(failure.at),
            },
        },
    }
    if not details:
        return report
    providers: dict[str, Any] = {}
    for name, provider in ruleset.providers.items():
        sources = credentials.availability(provider)
        flags = [s["available"] for s in sources]
        providers[name] = {
            "base_url": provider.base_url,
            "key": sources,
            # True: a configured source has a credential now; None: only the client's own can serve.
            "credential_available": True if True in flags else (None if None in flags else False),
            "policy": provider.policy(),
            "timeout_s": provider.timeout_s,
            # Where each value set by the file or the preset came from: "file", "preset zai".
            "preset": provider.preset,
            "origins": provider.origins,
        }
    report["providers"] = providers
    report["routes"] = [
        {
            "name": r.name,
            "match": list(r.match),
            "to": [
                {"provider": t.provider.name, "model": t.model, **({"spill_at": dict(t.spill_at)} if t.spill_at else {})}
                for t in r.to
            ],
            "fallback_on": sorted(r.fallback_on),
            **({"when": r.when.describe()} if r.when is not None else {}),
        }
        for r in ruleset.routes
    ]
    report["tiers"] = tiers_view(ruleset, env)
    report["resilience"] = {**provider_health.snapshot(), "concurrency": limits.snapshot() if limits else {}}
    report["quota"] = quota.snapshot(ruleset) if quota is not None else []
    return report
