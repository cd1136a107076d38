"""Soak: many concurrent streams through the real gateway, random upstream faults, nothing lost.

    python benchmarks/soak.py                   # 1,000 streams for 60 s, 10% faults (issue 6, item 8)
    python benchmarks/soak.py --quick           # 100 streams for 15 s
    python benchmarks/soak.py --workers 2 --fault-rate 0.3 --seed 7 --rounds 2

Three processes: the fault-injecting upstream (soak_upstream.py), ``gateway serve`` with a
generated routes.toml (_soak_clients.ROUTES_TOML), and this one, whose N clients each loop for
the run's duration: pick a behaviour (a fault with probability --fault-rate, else a normal
stream), send a streaming POST /v1/messages, read the SSE to its end, classify what came back.
Then the pools are left idle and the gateway's file descriptors are counted again; with
``--rounds 2`` the whole phase runs twice, so the second round's RSS and fds can be compared
with the first's.

Every request names its fault in the query string (which the gateway keeps), so the client
knows what to expect and the upstream records what it applied; the two are joined by request
id. A stream is LOST when it ends without message_stop and without an error event, or is still
open at the client's deadline. The exit status is 1 when anything was lost, answered against
expectation, failed at the client, or leaked (fds or upstream connections still open after the
idle time).

The gateway's memory, fds and sockets come from /proc (_soak_probe.py); the report is
_soak_report.py. ``--gateway-cmd`` runs another gateway command line (a patched copy, to try a
fix against the same load).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import uvloop
from _common import free_port, http_get, raise_nofile_limit, stop_groups, wait_ready
from _soak_clients import ROUTES_TOML, Clients, Shape
from _soak_probe import gateway_metrics, snapshot, tcp_counters
from _soak_report import RoundEnd, Run, figures, report

HERE = Path(__file__).resolve().parent
PY = sys.executable
SOAK_KEY = "soak-upstream-key"


class Processes:
    """Children in their own sessions, stopped with their whole trees; logs in one directory."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        log = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(argv, env={**os.environ, **(env or {})}, cwd=cwd, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        # SIGINT: the gateway shuts its workers down on it.
        stop_groups(self.procs, signal.SIGINT, grace_s=15)


async def soak(args: argparse.Namespace, run: Run, number: int, gateway_pid: int, gateway_port: int,
               upstream_port: int) -> None:
    """One client phase (a round), with the gateway sampled every second."""
    # Request ids go on from the previous round: the upstream's records are joined on them.
    clients = Clients(f"http://127.0.0.1:{gateway_port}", run.shape, args.fault_rate, f"{args.seed}:{number}",
                      args.deadline, args.body, first_id=len(run.outcomes) + 1)
    start = time.monotonic()
    report_every = 5.0 if args.seconds <= 20 else 10.0
    next_report = start + report_every

    async def sample() -> None:
        nonlocal next_report
        while True:
            await asyncio.sleep(1.0)
            snap = await asyncio.to_thread(snapshot, gateway_pid, upstream_port, gateway_port)
            run.peak_rss_kb = max(run.peak_rss_kb, snap.rss_kb)
            t = snap.at - run.started
            run.timeline.append((t, clients.in_flight, len(run.outcomes) + len(clients.outcomes), snap))
            if snap.at >= next_report:
                next_report += report_every
                lost = sum(o.result in ("lost", "hung") for o in clients.outcomes)
                _progress(f"t={snap.at - start:5.1f}s in flight {clients.in_flight:5d}  done "
                          f"{len(clients.outcomes):6d}  lost {lost}  gateway RSS {snap.rss_kb / 1024:6.1f} MB  "
                          f"fds {snap.fds:5d}  to upstream {snap.upstream_open:5d}")

    sampler = asyncio.create_task(sample())
    try:
        await clients.run(args.streams, args.seconds, args.ramp)
    finally:
        sampler.cancel()
    run.elapsed_s += time.monotonic() - start
    run.drain_s = max(run.drain_s, time.monotonic() - start - args.seconds)
    run.outcomes.extend(clients.outcomes)


def start_gateway(args: argparse.Namespace, procs: Processes, tmp: Path, upstream_port: int,
                  closed_port: int) -> tuple[subprocess.Popen[bytes], int]:
    """`gateway serve` on the soak's routes.toml; returns it and its port once /health answers."""
    config = tmp / "routes.toml"
    config.write_text(ROUTES_TOML.format(port=upstream_port, closed=closed_port, timeout=args.timeout,
                                         fallback_timeout=max(30.0, args.timeout)))
    port = free_port()
    gateway_bin = Path(PY).parent / "gateway"
    command = shlex.split(args.gateway_cmd) or [
        str(gateway_bin if gateway_bin.exists() else shutil.which("gateway") or "gateway")]
    argv = [*command, "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(args.workers), "--no-watch", "--log-level", "warning",
            *shlex.split(args.gateway_args)]
    # cwd = the temp dir, so no stray ./.env takes part.
    gateway = procs.start("gateway", argv, env={"SOAK_KEY": SOAK_KEY}, cwd=tmp)
    wait_ready(gateway, port, "/health", deadline_s=60)
    time.sleep(0.5)  # let the workers finish starting (tree complete) before the baseline
    return gateway, port


def wait_idle(run: Run, gateway_pid: int, upstream_port: int, gateway_port: int, limit_s: float) -> RoundEnd:
    """Poll until the gateway is back to its baseline (no upstream connections, sockets as before)."""
    assert run.before is not None
    time.sleep(1.0)  # the client connections' closes reach the gateway
    after = snapshot(gateway_pid, upstream_port, gateway_port)
    upstream_after = orjson.loads(http_get(upstream_port, "/stats", timeout=10)[1])
    _progress(f"round over; waiting up to {limit_s:g} s for idle upstream connections to close "
              f"({after.upstream_open} open)")
    idle_start = time.monotonic()
    while True:
        time.sleep(2.0)
        idle = snapshot(gateway_pid, upstream_port, gateway_port)
        waited = time.monotonic() - idle_start
        # Sockets, not all fds: a worker may keep a file it opened on first use (metrics).
        sockets_back = idle.fd_kinds.get("socket", 0) <= run.before.fd_kinds.get("socket", 0)
        if (idle.upstream_open == 0 and sockets_back) or waited >= limit_s:
            break
    upstream_idle = orjson.loads(http_get(upstream_port, "/stats", timeout=10)[1])
    return RoundEnd(after, idle, waited, run.peak_rss_kb, upstream_after, upstream_idle)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.quick:
        args.streams, args.seconds = 100, 15.0
    if not args.ramp:
        args.ramp = max(0.5, 2.0 * args.streams / 1000)
    shape = Shape(args.deltas, args.delay_ms, slow_deltas=4, slow_delay_ms=args.timeout * 500,
                  retry_after=args.retry_after)

    raise_nofile_limit()
    run = Run(args, shape, os.getloadavg())
    _progress(f"load average at start: {run.load_start[0]:.2f} {run.load_start[1]:.2f} "
              f"{run.load_start[2]:.2f} on {os.cpu_count()} cores")
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    logdir = args.logs or tmp
    logdir.mkdir(parents=True, exist_ok=True)
    procs = Processes(logdir)
    # A bound socket that never listens: connecting to its port is refused for the whole run.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    try:
        upstream_port = free_port()
        upstream = procs.start("upstream", [PY, str(HERE / "soak_upstream.py"), "--port", str(upstream_port)])
        wait_ready(upstream, upstream_port, "/health")
        gateway, gateway_port = start_gateway(args, procs, tmp, upstream_port, closed.getsockname()[1])
        run.gateway_log = logdir / "gateway.log"
        run.before = snapshot(gateway.pid, upstream_port, gateway_port)
        run.peak_rss_kb = run.before.rss_kb
        _progress(f"gateway pid {gateway.pid} ({run.before.pids} processes), port {gateway_port}; "
                  f"upstream port {upstream_port}; {args.streams} streams for {args.seconds:g} s"
                  f"{f' x {args.rounds} rounds' if args.rounds > 1 else ''}, fault rate {args.fault_rate:g}, "
                  f"seed {args.seed}")
        run.tcp_before = tcp_counters()
        run.started = time.monotonic()
        for number in range(1, args.rounds + 1):
            uvloop.run(soak(args, run, number, gateway.pid, gateway_port, upstream_port))
            if number == 1:
                run.load_end = os.getloadavg()
            run.tcp_after = tcp_counters()
            if number == args.rounds:
                # Before the idle wait: the gateway's counters and the upstream's records of the run.
                run.metrics = gateway_metrics(gateway_port)
                raw = orjson.loads(http_get(upstream_port, "/records", timeout=60)[1])
                run.records = [dict(zip(raw["fields"], r)) for r in raw["records"]]
            run.rounds.append(wait_idle(run, gateway.pid, upstream_port, gateway_port, args.idle_wait))
    finally:
        procs.stop_all()
        closed.close()
    failed = report(run)
    if args.json:
        args.json.write_bytes(orjson.dumps(figures(run), option=orjson.OPT_INDENT_2))
    if not args.logs:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000, help="concurrent clients (default 1000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long clients start requests")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument("--fault-rate", type=float, default=0.1, help="share of requests with a fault")
    parser.add_argument("--seed", type=int, default=1, help="seed of every client's choices")
    parser.add_argument("--quick", action="store_true", help="100 streams for 15 s")
    parser.add_argument("--rounds", type=int, default=1,
                        help="client phases, each followed by the idle wait: a second round that "
                             "ends at the first one's RSS and fds shows there is no growth")
    parser.add_argument("--deltas", type=int, default=20, help="text deltas of a normal stream")
    parser.add_argument("--delay-ms", type=float, default=100.0, help="between events of a normal stream")
    parser.add_argument("--timeout", type=float, default=2.0,
                        help="timeout_s of the first targets: hang and silence end after it")
    parser.add_argument("--retry-after", type=int, default=1, help="seconds in the injected 429/529")
    parser.add_argument("--deadline", type=float, default=60.0,
                        help="a request still open after this many seconds is LOST (hung)")
    parser.add_argument("--ramp", type=float, default=0.0, help="start the clients over S seconds "
                        "(default: 2 s per 1,000)")
    parser.add_argument("--idle-wait", type=float, default=150.0,
                        help="at most this long for the gateway's pool to drop idle connections "
                             "(keepalive 60 s, checked every 60 s)")
    parser.add_argument("--body", choices=("tiny", "cc"), default="cc")
    parser.add_argument("--gateway-args", default="",
                        help="more arguments for `gateway serve`, e.g. \"--log-level info\" (the last one wins)")
    parser.add_argument("--gateway-cmd", default="",
                        help="command that runs the gateway CLI instead of the venv's `gateway` "
                             "(e.g. \"python my_patched_gateway.py\", to try a fix)")
    parser.add_argument("--logs", type=Path, help="keep the processes' logs in this directory")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser


def _progress(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
