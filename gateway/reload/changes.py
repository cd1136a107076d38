"""What a reload changed, in words for the log: routes and providers added, removed, changed."""

from __future__ import annotations

from collections.abc import Mapping

from rules.model import RuleSet

__all__ = ["describe_changes", "restart_only_changes"]


def _diff(kind: str, old: Mapping[str, object], new: Mapping[str, object]) -> list[str]:
    added = [n for n in new if n not in old]
    removed = [n for n in old if n not in new]
    changed = [n for n in new if n in old and old[n] != new[n]]
    return [
        f"{kind} {what}: {', '.join(names)}"
        for what, names in (("added", added), ("removed", removed), ("changed", changed))
        if names
    ]


def describe_changes(old: RuleSet, new: RuleSet) -> str:
    """One line saying what a reload changed: routes and providers added, removed, changed."""

    def routes(ruleset: RuleSet) -> dict[str, object]:
        # A route "changes" with its patterns, targets or fallback statuses; a provider's own
        # settings are reported under providers, not once more for every route using it.
        return {
            r.name: (r.match, tuple((t.provider.name, t.model) for t in r.to), r.fallback_on)
            for r in ruleset.routes
        }

    old_routes, new_routes = routes(old), routes(new)
    parts = _diff("routes", old_routes, new_routes)
    kept = [name for name in new_routes if name in old_routes]
    if kept != [name for name in old_routes if name in new_routes]:
        parts.append("route order changed")
    parts += _diff("providers", dict(old.providers), dict(new.providers))
    if old.defaults != new.defaults:
        parts.append("defaults changed")
    if old.server != new.server:
        parts.append("server changed")
    return "; ".join(parts) or "no change in effect (comments or formatting only)"


def restart_only_changes(old: RuleSet, new: RuleSet) -> list[str]:
    """The ``[server]`` settings that changed but only apply at the next start."""
    out = []
    for name in ("host", "port", "max_body_mb", "ledger"):
        before, after = getattr(old.server, name), getattr(new.server, name)
        if before != after:
            out.append(f"server.{name} {_show(before)} -> {_show(after)}")
    return out


def _show(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)
