"""The usage view: per provider and model since start, requests, tokens, errors, fallbacks.

``GET /stats`` answers the JSON document ``usage()`` builds; ``gateway stats`` fetches it and
prints ``render_table()``. Both read the Prometheus metrics (gateway.ops.metrics), so with several
workers the figures are the sums over all of them, exactly as ``/metrics`` shows them, and
there is one set of counters to keep right instead of two.

Document shape (fields may be added, never changed)::

    {"since": "2026-01-05T09:12:44Z", "uptime_s": 8021.5,
     "totals": {"requests": 42, "count_tokens": 9, "errors": 1, "fallbacks": 2,
                "input_tokens": 115120, "output_tokens": 8050},
     "providers": [{"provider": "zai", "requests": 30, ..., "share_requests": 0.714,
                    "share_tokens": 0.62, "models": [{"model": "glm-4.7", "requests": 30, ...}]}]}

``quota`` (when an answer carried a Claude plan's ``anthropic-ratelimit-unified-*`` headers):
per provider and credential digest, each window's utilization in the latest answer, its reset
and the seconds until then::

     "quota": [{"provider": "anthropic", "credential": "client#9f2c1ab04d3e",
                "windows": {"5h": {"utilization": 0.42, "reset": "2026-01-05T14:00:00Z", "resets_in_s": 9000.0},
                            "7d": {...}}}]

``requests`` counts Messages calls (``/v1/messages``), the work a subscription pays for;
``count_tokens`` calls are counted apart. ``errors`` are answers with an error status or a
stream that ended with an error; ``fallbacks`` are times the provider failed (or was cooling
down) and the request moved on to the route's next target. Provider ``none`` holds requests no
provider was asked for (no route matched, no credential).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.timefmt import duration, iso

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["FIELDS", "command", "render_table", "usage"]

FIELDS = ("requests", "count_tokens", "errors", "fallbacks", "input_tokens", "output_tokens")


@dataclass
class _Row:
    requests: float = 0
    count_tokens: float = 0
    errors: float = 0
    fallbacks: float = 0
    input_tokens: float = 0
    output_tokens: float = 0
    models: dict[str, _Row] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        setattr(self, name, getattr(self, name) + value)

    def counts(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in FIELDS}


def usage(families: Iterable[Metric], now: float | None = None) -> dict[str, Any]:
    """The usage document from the gateway's metric families (see the module docstring)."""
    now = time.time() if now is None else now
    providers: dict[str, _Row] = {}
    started: float | None = None
    quota: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    def row(provider: str, model: str) -> _Row:
        top = providers.setdefault(provider, _Row())
        return top.models.setdefault(model, _Row())

    for family in families:
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "gateway_start_time_seconds":
                started = value if started is None else min(started, value)
                continue
            if name in _QUOTA_GAUGES:
                window = quota.setdefault((labels["provider"], labels["credential"]), {}).setdefault(labels["window"], {})
                window[_QUOTA_GAUGES[name]] = value
                continue
            if not name.endswith("_total") or not value:
                continue
            if name == "gateway_requests_total":
                column = "requests" if labels.get("endpoint") == "messages" else "count_tokens"
                row(labels["provider"], labels["model"]).add(column, value)
            elif name == "gateway_request_errors_total":
                row(labels["provider"], labels["model"]).add("errors", value)
            elif name == "gateway_fallbacks_total":
                row(labels["provider"], labels["model"]).add("fallbacks", value)
            elif name == "gateway_tokens_total":
                column = "input_tokens" if labels.get("direction") == "input" else "output_tokens"
                row(labels["provider"], labels["model"]).add(column, value)

    totals = _Row()
    for top in providers.values():
        for model_row in top.models.values():
            for name in FIELDS:
                top.add(name, getattr(model_row, name))
        for name in FIELDS:
            totals.add(name, getattr(top, name))
    all_tokens = totals.input_tokens + totals.output_tokens

    out_providers = []
    for name in sorted(providers):
        top = providers[name]
        tokens = top.input_tokens + top.output_tokens
        out_providers.append({
            "provider": name,
            **top.counts(),
            "share_requests": round(top.requests / totals.requests, 3) if totals.requests else 0.0,
            "share_tokens": round(tokens / all_tokens, 3) if all_tokens else 0.0,
            "models": [{"model": m, **top.models[m].counts()} for m in sorted(top.models)],
        })
    return {
        "since": iso(started) if started is not None else None,
        "uptime_s": round(now - started, 1) if started is not None else None,
        "totals": totals.counts(),
        "providers": out_providers,
        "quota": _quota_rows(quota, now),
    }


_QUOTA_GAUGES = {"gateway_quota_utilization": "utilization", "gateway_quota_reset_timestamp_seconds": "reset"}


def _quota_rows(quota: dict[tuple[str, str], dict[str, dict[str, Any]]], now: float) -> list[dict[str, Any]]:
    rows = []
    for (provider, credential), windows in sorted(quota.items()):
        shown: dict[str, Any] = {}
        for window in sorted(windows, key=_window_order):
            values = windows[window]
            reset = values.get("reset")
            shown[window] = {
                "utilization": values.get("utilization"),
                "reset": iso(reset) if reset is not None else None,
                "resets_in_s": round(reset - now, 1) if reset is not None else None,
            }
        rows.append({"provider": provider, "credential": credential, "windows": shown})
    return rows


def _window_order(window: str) -> tuple[int, str]:
    known = ("5h", "7d", "7d_oi", "overage")
    return (known.index(window) if window in known else len(known), window)


_COLUMNS = (
    ("REQUESTS", "requests"),
    ("ERRORS", "errors"),
    ("FALLBACKS", "fallbacks"),
    ("INPUT TOKENS", "input_tokens"),
    ("OUTPUT TOKENS", "output_tokens"),
)


def render_table(doc: dict[str, Any]) -> str:
    """The usage document as a table: one line per provider and model, then the totals."""
    lines: list[list[str]] = [["PROVIDER", "MODEL", *(title for title, _ in _COLUMNS), "SHARE"]]
    for provider in doc.get("providers", []):
        name = provider["provider"] if provider["provider"] != "none" else "(none)"
        models = provider.get("models", [])
        for model in models:
            lines.append([name, model["model"], *(f"{model[key]:,}" for _, key in _COLUMNS), ""])
        share = f"{provider.get('share_tokens', 0.0) * 100:.1f}% tok, {provider.get('share_requests', 0.0) * 100:.1f}% req"
        if len(models) != 1:
            lines.append([name, "(all)", *(f"{provider[key]:,}" for _, key in _COLUMNS), share])
        else:
            lines[-1][-1] = share
    totals = doc.get("totals", {})
    lines.append(["TOTAL", "", *(f"{totals.get(key, 0):,}" for _, key in _COLUMNS), ""])

    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    numeric = range(2, 2 + len(_COLUMNS))
    rendered = []
    for line in lines:
        cells = [cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(line)]
        rendered.append("  ".join(cells).rstrip())
    since = doc.get("since")
    head = "Usage since the gateway started"
    if since:
        head = f"Usage since {since} (up {duration(doc.get('uptime_s') or 0)})"
    note = "requests: /v1/messages calls; count_tokens calls: " + f"{totals.get('count_tokens', 0):,}"
    if not doc.get("providers"):
        return f"{head}\nNo requests yet.\n"
    return "\n".join([head, "", *rendered, "", note, *_quota_table(doc.get("quota") or [])]) + "\n"


def _quota_table(rows: list[dict[str, Any]]) -> list[str]:
    """The plan windows under the usage table: used share and time to reset, per credential."""
    lines = [["PROVIDER", "CREDENTIAL", "WINDOW", "USED", "RESETS IN"]]
    for row in rows:
        for window, values in row.get("windows", {}).items():
            used = values.get("utilization")
            left = values.get("resets_in_s")
            lines.append([
                row["provider"], row["credential"], window,
                f"{used * 100:.0f}%" if used is not None else "?",
                "-" if left is None else (duration(left) if left > 0 else "reset (figure is old)"),
            ])
    if len(lines) == 1:
        return []
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    table = ["  ".join(c.rjust(widths[i]) if i == 3 else c.ljust(widths[i]) for i, c in enumerate(line)).rstrip()
             for line in lines]
    return ["", "Claude plan quota, as the latest answer for each credential put it:", "", *table]


def command(url: str | None, config: str | None, as_json: bool, env: Mapping[str, str], cwd: Path) -> str:
    """What ``gateway stats`` prints: the table (or the JSON) of the gateway at ``url``.

    Without ``url``, the address and the client key come from the config (found as ``serve``
    finds it); ``$GATEWAY_CLIENT_KEY`` is the key otherwise.
    """
    import json as jsonlib

    from gateway.client_keys import resolve_keys
    from gateway.ops.http import gateway_json
    from gateway.settings import listen_address, load_config, local_url
    from rules.errors import ConfigError

    key = env.get("GATEWAY_CLIENT_KEY") or None
    try:
        ruleset = load_config(config, env, cwd).ruleset
    except ConfigError:
        if config is not None:
            raise
        ruleset = None  # the defaults below still find a gateway started with flags
    if ruleset is not None:
        accepted = resolve_keys(ruleset.server.client_keys, env).keys
        if accepted and key is None:
            key = accepted[0].decode("utf-8", "surrogateescape")
    doc = gateway_json(url or local_url(*listen_address(ruleset)), "/stats", key=key)
    return jsonlib.dumps(doc, indent=2) + "\n" if as_json else render_table(doc)
