"""``gateway stats --since 7d [--by provider|route|model|class|day]``: the ledger, grouped.

Read straight from the file, so it answers whether the gateway runs or not, and over any
span the ledger keeps (``ledger_days``). One row per group, its request count first, then the
totals and the share each provider served::

    Usage from 2026-01-05 09:12 to 2026-01-12 09:12 (last 7 d), ledger ~/.local/state/claude-gateway/ledger.db

    PROVIDER   REQUESTS  ERRORS  FALLBACKS  INPUT TOKENS  OUTPUT TOKENS  CACHE READ  CACHE WRITE
    anthropic        45       0          0       514,974         38,214   9,120,334      410,222
    zai             220       1          3       301,782         22,338           0            0
    TOTAL           265       1          3       816,756         60,552   9,120,334      410,222

    Served: zai 83.0% of requests (36.9% of tokens), anthropic 17.0% (63.1%)
    count_tokens calls: 12

``requests`` are Messages calls; tokens are what the upstreams reported (input and output; cache
reads and writes apart); ``fallbacks`` are requests that moved past their route's first target.
"""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.ops.ledger.store import LedgerError, connect
from gateway.timefmt import duration, iso

__all__ = ["GROUPS", "command", "parse_since", "render", "report"]

# --by NAME: the SQL expressions of the group's key columns, and their titles.
GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "provider": (("coalesce(provider, 'none')", "PROVIDER"),),
    "route": (("coalesce(route, 'none')", "ROUTE"),),
    "model": (("client_model", "CLIENT MODEL"), ("coalesce(upstream_model, '-')", "UPSTREAM MODEL")),
    "class": (("request_class", "CLASS"),),
    "day": (("date(ts, 'unixepoch', 'localtime')", "DAY"),),
}

_SUMS = (
    ("requests", "count(*)", "REQUESTS"),
    ("errors", "sum(status >= 400 OR error IS NOT NULL)", "ERRORS"),
    ("fallbacks", "sum(tried > 1)", "FALLBACKS"),
    ("input_tokens", "coalesce(sum(input_tokens), 0)", "INPUT TOKENS"),
    ("output_tokens", "coalesce(sum(output_tokens), 0)", "OUTPUT TOKENS"),
    ("cache_read_tokens", "coalesce(sum(cache_read_tokens), 0)", "CACHE READ"),
    ("cache_creation_tokens", "coalesce(sum(cache_creation_tokens), 0)", "CACHE WRITE"),
)
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([mhdw])")


def parse_since(text: str, now: float) -> float:
    """The start of ``--since``: a span back from now (``90m``, ``24h``, ``7d``, ``2w``), or a
    local date or time (``2026-01-05``, ``2026-01-05T09:00``). Raises ValueError with the forms."""
    value = text.strip().lower()
    span = _SPAN.fullmatch(value)
    if span:
        return now - float(span.group(1)) * _UNITS[span.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()  # naive: local time
    except ValueError:
        raise ValueError(
            f"{text!r} is not a span or a date: use 90m, 24h, 7d, 2w, or a date such as 2026-01-05"
        ) from None


def _sums(conn: sqlite3.Connection, keys: tuple[tuple[str, str], ...], since: float, until: float) -> list[dict[str, Any]]:
    columns = [expr for expr, _ in keys]
    select = ", ".join(columns + [expr for _, expr, _ in _SUMS])
    group = f" GROUP BY {', '.join(columns)} ORDER BY {', '.join(columns)}" if columns else ""
    query = f"SELECT {select} FROM requests WHERE endpoint = 'messages' AND ts >= ? AND ts < ?{group}"
    out = []
    for values in conn.execute(query, (since, until)):
        key, sums = values[: len(columns)], values[len(columns) :]
        if columns or sums[0]:
            out.append({"key": list(key), **{name: int(v or 0) for (name, _, _), v in zip(_SUMS, sums)}})
    return out


def _tokens(entry: dict[str, Any]) -> int:
    return int(entry["input_tokens"]) + int(entry["output_tokens"])


def report(path: Path, since: float, by: str, now: float | None = None) -> dict[str, Any]:
    """The JSON document of ``gateway stats --since ... --json`` (fields may be added, never changed)."""
    now = time.time() if now is None else now
    conn = connect(path, create=False)
    try:
        groups = _sums(conn, GROUPS[by], since, now)
        totals = _sums(conn, (), since, now)
        per_provider = _sums(conn, GROUPS["provider"], since, now)
        count_tokens = conn.execute(
            "SELECT count(*) FROM requests WHERE endpoint = 'count_tokens' AND ts >= ? AND ts < ?", (since, now)
        ).fetchone()[0]
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot read the ledger {path}: {exc}") from None
    finally:
        conn.close()
    total = totals[0] if totals else {name: 0 for name, _, _ in _SUMS}
    total.pop("key", None)
    all_tokens = _tokens(total)
    providers = sorted(
        (
            {
                "provider": p["key"][0],
                "requests": p["requests"],
                "share_requests": round(p["requests"] / total["requests"], 3) if total["requests"] else 0.0,
                "share_tokens": round(_tokens(p) / all_tokens, 3) if all_tokens else 0.0,
            }
            for p in per_provider
        ),
        key=lambda p: (-p["requests"], p["provider"]),
    )
    return {
        "ledger": str(path),
        "since": iso(since),
        "until": iso(now),
        "by": by,
        "columns": [title.lower().replace(" ", "_") for _, title in GROUPS[by]],
        "groups": groups,
        "totals": {**total, "count_tokens": count_tokens},
        "providers": providers,
    }


def _local(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def render(doc: dict[str, Any], since_text: str | None = None) -> str:
    """The report as a table: one line per group, then TOTAL, the providers' shares, count_tokens."""
    since = datetime.fromisoformat(doc["since"].replace("Z", "+00:00")).timestamp()
    until = datetime.fromisoformat(doc["until"].replace("Z", "+00:00")).timestamp()
    span = f"last {since_text}" if since_text and _SPAN.fullmatch(since_text.strip().lower()) else duration(until - since)
    head = f"Usage from {_local(since)} to {_local(until)} ({span}), ledger {doc['ledger']}"
    if not doc["groups"]:
        return f"{head}\nNo requests in that time.\n"
    keys = [title for _, title in GROUPS[doc["by"]]]
    lines = [[*keys, *(title for _, _, title in _SUMS)]]
    for group in doc["groups"]:
        lines.append([str(k) for k in group["key"]] + [f"{group[name]:,}" for name, _, _ in _SUMS])
    total = doc["totals"]
    lines.append(["TOTAL", *([""] * (len(keys) - 1)), *(f"{total[name]:,}" for name, _, _ in _SUMS)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    rendered = [
        "  ".join(c.ljust(widths[i]) if i < len(keys) else c.rjust(widths[i]) for i, c in enumerate(line)).rstrip()
        for line in lines
    ]
    shares = ", ".join(
        f"{p['provider']} {p['share_requests'] * 100:.1f}%" + (" of requests (" if i == 0 else " (")
        + f"{p['share_tokens'] * 100:.1f}%" + (" of tokens)" if i == 0 else ")")
        for i, p in enumerate(doc["providers"])
    )
    return "\n".join([head, "", *rendered, "", f"Served: {shares}", f"count_tokens calls: {total['count_tokens']:,}"]) + "\n"


def command(
    config: str | None, since: str | None, by: str | None, as_json: bool, env: dict[str, str], cwd: Path
) -> str:
    """What ``gateway stats --since S [--by B]`` prints. ``--by`` alone means the last 7 days.

    The ledger is the one the config names (found as ``serve`` finds it), so the command reads
    the file the gateway writes.
    """
    import json

    from gateway.errors import ConfigFailure, UserError
    from gateway.ops.ledger.store import ledger_path
    from gateway.settings import load_config
    from rules.errors import ConfigError

    now = time.time()
    try:
        start = parse_since(since or "7d", now)
    except ValueError as exc:
        raise UserError(f"--since: {exc}") from None
    try:
        ruleset = load_config(config, env, cwd).ruleset
    except ConfigError as exc:
        raise ConfigFailure(exc) from None
    path = ledger_path(ruleset, env)
    if path is None:
        raise UserError(
            f"the ledger is off ([server] ledger = false in {ruleset.source.path}): "
            "no request was recorded; `gateway stats` without --since shows the running gateway's counts"
        )
    try:
        doc = report(path, start, by or "provider", now)
    except LedgerError as exc:
        raise UserError(str(exc)) from None
    return json.dumps(doc, indent=2) + "\n" if as_json else render(doc, since or "7d")
