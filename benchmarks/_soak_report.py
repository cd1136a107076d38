"""The soak's report: requests by result, faults injected vs seen, the gateway's memory and fds.

Client outcomes and the upstream's records are joined by request id: the upstream says which
faults it applied and when the gateway let go of each held connection.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _soak_clients import KINDS, Outcome, Shape
from _soak_probe import Snapshot


@dataclass
class RoundEnd:
    """The gateway at the end of one client phase, and after its pools went idle."""

    after: Snapshot
    idle: Snapshot
    idle_waited_s: float
    peak_rss_kb: int  # the highest sampled RSS so far
    upstream_after: dict[str, int]  # the upstream's /stats
    upstream_idle: dict[str, int]


@dataclass
class Run:
    """Everything measured, for the report."""

    args: argparse.Namespace
    shape: Shape
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    started: float = 0.0
    before: Snapshot | None = None
    rounds: list[RoundEnd] = field(default_factory=list)
    timeline: list[tuple[float, int, int, Snapshot]] = field(default_factory=list)
    peak_rss_kb: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[tuple[str, str, str], float] = field(default_factory=dict)
    elapsed_s: float = 0.0  # the client phases, summed
    drain_s: float = 0.0  # the longest time a round's last requests took after its stop time
    gateway_log: Path | None = None
    tcp_before: dict[str, int] = field(default_factory=dict)
    tcp_after: dict[str, int] = field(default_factory=dict)


def _pct(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"


def _mb(kb: int) -> str:
    return f"{kb / 1024:.1f} MB"


def report(run: Run) -> bool:
    """Print the figures; True when the run failed (lost, unexpected, leaked)."""
    args, shape, outcomes = run.args, run.shape, run.outcomes
    assert run.before and run.rounds
    by_result = Counter(o.result for o in outcomes)
    problems = [(o, p) for o in outcomes if (p := o.problem(shape)) is not None]
    lost = [o for o in outcomes if o.result in ("lost", "hung")]
    records_by_id: dict[int, list[dict[str, Any]]] = {}
    for rec in run.records:
        records_by_id.setdefault(rec["soak_id"], []).append(rec)

    print()
    print(f"soak: {args.streams} concurrent streams for {args.seconds:g} s through `gateway serve "
          f"--workers {args.workers}`, fault rate {args.fault_rate:g}, seed {args.seed}, body {args.body}")
    print(f"  normal stream: {shape.deltas} deltas {shape.delay_ms:g} ms apart; slow: {shape.slow_deltas} "
          f"deltas {shape.slow_delay_ms:g} ms apart; first targets' timeout_s {args.timeout:g}; "
          f"retry-after {shape.retry_after}")
    print(f"  load average {run.load_start[0]:.2f} at start, {run.load_end[0]:.2f} at end "
          f"({os.cpu_count()} cores); clients ran {run.elapsed_s:.1f} s (last requests drained in "
          f"{run.drain_s:.1f} s)")

    print("\nRequests (as the clients saw them)")
    print(f"  sent                          {len(outcomes)}")
    print(f"  completed with message_stop  {by_result['stop']}")
    print(f"  ended with an SSE error event {by_result['error_event']}")
    http = Counter(o.status for o in outcomes if o.result == "http")
    print(f"  answered with an HTTP error   {sum(http.values())}"
          + (" (" + ", ".join(f"{s}: {n}" for s, n in sorted(http.items())) + ")" if http else ""))
    print(f"  abandoned by the client       {by_result['aborted']} (client_abort, abort_waiting)")
    exceptions = Counter(o.exception.split(":")[0] for o in outcomes if o.result == "exception")
    print(f"  client-side exceptions        {by_result['exception']}"
          + (" (" + ", ".join(f"{e}: {n}" for e, n in exceptions.most_common()) + ")" if exceptions else ""))
    headless = sum(not o.head for o in lost)
    print(f"  LOST                          {len(lost)} (ended without message_stop or error event: "
          f"{by_result['lost']}; still open at the {args.deadline:g} s deadline: {by_result['hung']}; "
          f"of all these, {headless} never got a response head)")
    done = [o.ended - o.started for o in outcomes if o.result == "stop" and o.kind == "ok"]
    print(f"  normal stream duration        {_pct(done)}")

    print("\nFaults injected vs what the clients saw")
    print(f"  {'kind':<14}{'sent':>6}{'injected':>9}{'skipped':>8}{'as expected':>12}{'other':>6}"
          f"{'lost':>5}{'p50 s':>7}{'max s':>7}  client must see")
    for name, kind in KINDS.items():
        mine = [o for o in outcomes if o.kind == name]
        if not mine and name != "ok":
            continue
        injected = skipped = 0
        for o in mine:
            recs = records_by_id.get(o.soak_id, [])
            if any(r["role"] != "secondary" and r["fault"] == kind.fault for r in recs):
                injected += 1
            elif kind.fallback and kind.route != "refused":
                skipped += 1  # the first target never saw it: cooldown (or a circuit) skipped it
        if name == "refused":
            injected = int(run.metrics.get(("gateway_upstream_attempts_total", "refused", "connect"), 0))
            skipped = int(run.metrics.get(("gateway_upstream_attempts_total", "refused", "skipped"), 0))
        ok = sum(o.problem(shape) is None for o in mine)
        n_lost = sum(o.result in ("lost", "hung") for o in mine)
        must = {"stop": f"message_stop via {kind.role}", "error_event": f"error event '{kind.says}'",
                "http": f"HTTP {kind.status}" + (" + retry-after" if kind.retry_after else ""),
                "abort": f"(client leaves after {kind.abort_after_s:g} s)" if kind.abort_after_s
                else "(client leaves after k events)"}[kind.expect]
        print(f"  {name:<14}{len(mine):>6}{injected if kind.fault != 'none' or name == 'refused' else '-':>9}"
              f"{skipped if kind.fallback else '-':>8}{ok:>12}{len(mine) - ok - n_lost:>6}{n_lost:>5}"
              f"{_seconds(mine, statistics.median):>7}{_seconds(mine, max):>7}  {must}")
    fallback = [o for o in outcomes if KINDS[o.kind].fallback]
    absorbed = sum(o.result == "stop" and o.role == "secondary" for o in fallback)
    print(f"  fallback faults sent {len(fallback)} == successes served by the second target {absorbed}: "
          f"{'yes' if absorbed == len(fallback) else 'NO'}")
    mid = [o for o in outcomes if KINDS[o.kind].expect == "error_event"]
    mid_seen = sum(o.result == "error_event" for o in mid)
    print(f"  mid-stream faults sent {len(mid)} == error events seen for them {mid_seen}: "
          f"{'yes' if mid_seen == len(mid) else 'NO'}")
    unrequested = sum(o.result == "error_event" for o in outcomes if KINDS[o.kind].expect != "error_event")
    print(f"  error events on requests without a mid-stream fault: {unrequested}")
    health = {f"{p} {e}": int(v) for (family, p, e), v in run.metrics.items()
              if family == "gateway_provider_health_events_total"}
    if health:
        print("  gateway cooldown/circuit events: " + ", ".join(f"{k}: {v}" for k, v in sorted(health.items())))

    # How fast the gateway let go of upstream connections it had to close.
    holds: dict[str, list[float]] = {"hang": [], "silent": []}
    unclosed = 0
    aborted_ids = {o.soak_id for o in outcomes if KINDS[o.kind].expect == "abort"}
    for rec in run.records:
        if rec["fault"] in holds and rec["soak_id"] not in aborted_ids:
            if rec["cut_by_us"] or rec["peer_closed"] is None:
                unclosed += 1
            else:
                since = rec["last_write"] if rec["fault"] == "silent" and rec["last_write"] else rec["started"]
                holds[rec["fault"]].append(rec["peer_closed"] - since)
    abort_close: list[float] = []
    abort_unclosed = abort_finished = abort_unasked = 0
    for o in outcomes:
        if o.result == "aborted" and o.aborted_at is not None:
            recs = [r for r in records_by_id.get(o.soak_id, []) if r["role"] == "primary"]
            if not recs:
                abort_unasked += 1  # the client left before the gateway had asked the upstream
            elif recs[0]["peer_closed"] is not None:
                abort_close.append(recs[0]["peer_closed"] - o.aborted_at)
            elif recs[0]["done"] is not None and not recs[0]["cut_by_us"]:
                abort_finished += 1  # the upstream's answer was complete before the gateway noticed
            else:
                abort_unclosed += 1
    print("\nUpstream connections the gateway had to close (seen by the upstream)")
    print(f"  hang before the head, closed after   {_pct(holds['hang'])} (timeout_s {args.timeout:g})")
    print(f"  silence mid-stream, closed after     {_pct(holds['silent'])} of silence")
    print(f"  client left, upstream closed after   {_pct(abort_close)} (target < 100 ms; mid-stream and "
          f"before the head)")
    print(f"    of {len(abort_close) + abort_finished + abort_unasked + abort_unclosed} abandoned requests: "
          f"upstream answer complete first {abort_finished}, upstream not asked yet {abort_unasked}, "
          f"never closed {abort_unclosed}")
    print(f"  held responses the gateway never closed (cut by the upstream after 120 s): {unclosed}")

    b = run.before
    last = run.rounds[-1]
    a, i, ui = last.after, last.idle, last.upstream_idle
    print(f"\nGateway process tree ({b.pids} process{'es' if b.pids > 1 else ''})")
    print(f"  RSS: start {_mb(b.rss_kb)}, peak sampled {_mb(run.peak_rss_kb)}, end of run {_mb(a.rss_kb)}, "
          f"after idle {_mb(i.rss_kb)}; peak VmHWM summed {_mb(i.hwm_kb)}")
    if b.pids > 1:
        print(f"  PSS (shared pages divided among the processes): start {_mb(b.pss_kb)}, end of run "
              f"{_mb(a.pss_kb)}, after idle {_mb(i.pss_kb)}")
    cpu = a.cpu_s - b.cpu_s
    print(f"  CPU during the run: {cpu:.1f} s ({100 * cpu / max(run.elapsed_s, 1e-9):.0f}% of one core)")
    print("  over the run (RSS/fds/upstream sockets): " + "  ".join(
        f"{t:.0f}s {s.rss_kb / 1024:.0f}MB/{s.fds}/{s.upstream_open}" for t, _, _, s in _spread(run.timeline, 7)))
    for number, end in enumerate(run.rounds, 1):
        # The upstream counts the connection of the /stats query that asks it, too: minus one.
        ua, uu = end.upstream_after, end.upstream_idle
        print(f"  {'round ' + str(number) + ': ' if len(run.rounds) > 1 else ''}open fds: before {b.fds}, "
              f"after the run {end.after.fds}, after {end.idle_waited_s:.0f} s idle {end.idle.fds}; "
              f"RSS after idle {_mb(end.idle.rss_kb)} (PSS {_mb(end.idle.pss_kb)}); sockets to the upstream: "
              f"after the run {_states(end.after)}, after idle {_states(end.idle)}; the upstream's view "
              f"{ua.get('connections_open', 1) - 1} then {uu.get('connections_open', 1) - 1}")
    print(f"    fds by kind before {_kinds(b)}; after idle {_kinds(i)}; files opened since: {_new_files(b, i)}")
    most = max((s.upstream_open for _, _, _, s in run.timeline), default=0)
    print(f"  most sockets to the upstream at once: {most} "
          f"(the upstream accepted {ui.get('connections_total')} connections in all, at most "
          f"{ui.get('connections_max')} at once)")
    print(f"  client connections open: after the run {a.clients}, after idle {i.clients}; "
          f"CLOSE_WAIT sockets: after the run {a.close_wait}, after idle {i.close_wait}; "
          f"held upstream answers still open {ui.get('held_now')}")
    tcp = {k: run.tcp_after.get(k, 0) - v for k, v in run.tcp_before.items()}
    print("  host TCP counters during the run: " + ", ".join(f"{k} +{v}" for k, v in tcp.items()))
    if tcp.get("ListenOverflows"):
        print("    (ListenOverflows: the gateway's accept queue was full, so the kernel dropped clients' "
              "handshakes; they retry after 1, 2, 4... s, and some are reset or hang)")
    leaks = _leaks(run)
    print(f"  fd / connection leak: {'YES: ' + '; '.join(leaks) if leaks else 'none'}")

    if problems:
        print(f"\nUnexpected outcomes: {len(problems)}")
        # Grouped with the numbers blanked out: "hung after 7 events" and "after 9" are one story.
        seen: Counter[tuple[str, str]] = Counter((o.kind, re.sub(r"\d+", "N", p)[:110]) for o, p in problems)
        for (kind_name, p), n in seen.most_common(12):
            print(f"  {n:5d} x {kind_name}: {p}")
        for o, p in problems[:3] + problems[-3:]:
            print(f"    e.g. soak id {o.soak_id} ({o.kind}, k={o.k}): {p}; upstream saw "
                  f"{[(r['role'], r['fault'], r['events_sent']) for r in records_by_id.get(o.soak_id, [])]}")
    log_errors = _log_errors(run.gateway_log)
    if log_errors:
        print(f"\nGateway log: {len(log_errors)} error lines; first ones:")
        for line in log_errors[:8]:
            print(f"  {line[:220]}")
    failed = bool(lost or problems or leaks or by_result["exception"] or unclosed or abort_unclosed)
    print(f"\nresult: {'FAILED' if failed else 'ok'} (lost {len(lost)}, unexpected {len(problems)}, "
          f"client exceptions {by_result['exception']}, leak {'yes' if leaks else 'no'})")
    return failed


def _seconds(outcomes: list[Outcome], how: Callable[[list[float]], float]) -> str:
    return f"{how([o.ended - o.started for o in outcomes]):.1f}" if outcomes else "-"


def _leaks(run: Run) -> list[str]:
    """What the gateway still holds after the idle time that it did not hold before the run.

    Sockets, pipes and event fds must be back to the baseline. A regular file opened on first
    use and kept (with several workers: prometheus-client's per-process .db files, two fds
    each) is no leak, so files count only when one path holds more than two fds more than
    before. With several rounds, the last round must end where the first one did.
    """
    assert run.before is not None
    before, first, last = run.before, run.rounds[0].idle, run.rounds[-1].idle
    found = []
    if last.upstream_open:
        found.append(f"{last.upstream_open} sockets to the upstream")
    if last.close_wait:
        found.append(f"{last.close_wait} CLOSE_WAIT sockets")
    for kind, n in last.fd_kinds.items():
        if kind != "file" and n > before.fd_kinds.get(kind, 0):
            found.append(f"{kind} fds {before.fd_kinds.get(kind, 0)} -> {n}")
    for path, n in last.files.items():
        if n > before.files.get(path, 0) + 2:
            found.append(f"{path} open {n} times")
    if len(run.rounds) > 1 and last.fds > first.fds:
        found.append(f"fds after idle grew from round 1 to round {len(run.rounds)}: {first.fds} -> {last.fds}")
    if run.rounds[-1].upstream_idle.get("connections_open", 1) > 1:
        found.append("the upstream still sees connections")
    return found


def _new_files(before: Snapshot, after: Snapshot) -> str:
    grown = sorted(path for path, n in after.files.items() if n > before.files.get(path, 0))
    return ", ".join(Path(path).name for path in grown) or "none"


def _states(s: Snapshot) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(s.upstream.items())) or "0"


def _kinds(s: Snapshot) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(s.fd_kinds.items()))


def _spread(timeline: list[Any], n: int) -> list[Any]:
    if len(timeline) <= n:
        return timeline
    step = (len(timeline) - 1) / (n - 1)
    return [timeline[round(i * step)] for i in range(n)]


def _log_errors(path: Path | None) -> list[str]:
    if path is None or not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    # Cooldown and circuit warnings are the faults doing their work, not errors.
    return [line for line in lines if ("ERROR" in line or "Traceback" in line or "CRITICAL" in line)]


def figures(run: Run) -> dict[str, Any]:
    """The report's figures as JSON."""
    assert run.before and run.rounds
    results = Counter(o.result for o in run.outcomes)
    return {
        "streams": run.args.streams, "seconds": run.args.seconds, "workers": run.args.workers,
        "fault_rate": run.args.fault_rate, "seed": run.args.seed,
        "load_start": run.load_start, "load_end": run.load_end,
        "sent": len(run.outcomes), "results": dict(results),
        "http_status": {str(k): v for k, v in Counter(o.status for o in run.outcomes if o.result == "http").items()},
        "kinds": {k: dict(Counter(o.result for o in run.outcomes if o.kind == k)) for k in KINDS},
        "unexpected": sum(o.problem(run.shape) is not None for o in run.outcomes),
        "lost": results["lost"] + results["hung"],
        "rss_kb": {"start": run.before.rss_kb, "peak": run.peak_rss_kb,
                   "rounds": [{"end": r.after.rss_kb, "idle": r.idle.rss_kb, "hwm_sum": r.idle.hwm_kb,
                               "pss_idle": r.idle.pss_kb}
                              for r in run.rounds]},
        "fds": {"before": run.before.fds,
                "rounds": [{"after": r.after.fds, "idle": r.idle.fds, "idle_waited_s": r.idle_waited_s}
                           for r in run.rounds]},
        "upstream_sockets": {"before": run.before.upstream,
                             "rounds": [{"after": r.after.upstream, "idle": r.idle.upstream} for r in run.rounds]},
        "tcp_counters": {k: run.tcp_after.get(k, 0) - v for k, v in run.tcp_before.items()},
        # Every request, for analysis: when it started and ended (monotonic s), what it got.
        "outcome_fields": ["soak_id", "kind", "result", "started", "ended", "status", "role", "events", "head"],
        "outcomes": [[o.soak_id, o.kind, o.result, o.started, o.ended, o.status, o.role, o.events, o.head]
                     for o in run.outcomes],
        "upstream_records": run.records,
        "timeline": [(t, flight, done, s.rss_kb, s.fds, s.upstream_open) for t, flight, done, s in run.timeline],
    }
