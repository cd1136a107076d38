"""The gateway's CPU time per request, for one build or two side by side (A/B).

    python benchmarks/cpu.py [--gateway PATH ...] [--rounds 5] [--requests 4000]

Throughput on a small machine moves with whatever else runs on its cores; the CPU time the
gateway's process spends per request moves much less, and it is what a feature costs every
request. This starts the fake upstream once and every build's gateway beside it (one worker,
`--no-watch`, the ledger on in the run's temp dir when the build knows it), then, round after
round, sends each build the same number of requests at concurrency 8 (tiny body, then the
captured 17 KB Claude Code body) and reads the gateway's user + system CPU time (all its
threads and child processes) before and after. Builds alternate within every round, so drift
cancels; each figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import run as run_module
from _common import free_port, raise_nofile_limit
from run import HERE, PY, LoadGen, Processes, start_target, temp_dir, wait_ready

server_table = run_module._server_table

_TICK = os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Sanic may serve from a child process)."""
    out = [pid]
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for task in tasks:
        try:
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except FileNotFoundError:
            continue
        for child in children:
            out += _tree(int(child))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid``'s process tree, in seconds."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / _TICK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", action="append", metavar="PATH[,noledger]",
                        help="a `gateway` executable to measure (repeat for an A/B; `,noledger` runs "
                        "it with `ledger = false`); default: the one beside this Python")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=4000, help="requests per measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    gateways = args.gateway or [str(Path(PY).parent / "gateway")]
    raise_nofile_limit()
    with temp_dir() as tmp:
        procs = Processes(tmp)
        try:
            up_port = free_port()
            upstream = procs.start("upstream", [PY, str(HERE / "fake_upstream.py"), "--port", str(up_port)])
            wait_ready(upstream, up_port, "/health", deadline_s=30)
            targets = []
            for i, spec in enumerate(gateways):
                path, _, option = spec.partition(",")
                build_dir = tmp / f"build{i}"
                build_dir.mkdir()
                run_module._server_table = (  # type: ignore[attr-defined]
                    (lambda _: "\n[server]\nledger = false\n") if option == "noledger" else server_table
                )
                proc, port = start_target("gateway", 1, up_port, procs, build_dir, [], Path(path).resolve())
                targets.append((spec, proc.pid, f"http://127.0.0.1:{port}"))
            loadgen = LoadGen(procs)
            for _, _, url in targets:  # warm up: pools, caches, the JIT-less interpreter's dicts
                loadgen.measure({"url": url, "body": "cc", "concurrency": args.concurrency,
                                 "requests": 2000, "warmup_s": 0})
            figures: dict[tuple[str, str], list[float]] = {}
            rates: dict[tuple[str, str], list[float]] = {}
            for r in range(args.rounds):
                print(f"[{time.strftime('%H:%M:%S')}] round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
                for body in ("tiny", "cc"):
                    for name, pid, url in targets:
                        before = cpu_seconds(pid)
                        result = loadgen.measure({"url": url, "body": body, "concurrency": args.concurrency,
                                                  "requests": args.requests, "warmup_s": 0})
                        used = cpu_seconds(pid) - before
                        if result["ok"] != args.requests:
                            raise RuntimeError(f"{name}: {result['ok']} of {args.requests} requests ok: "
                                               f"{result.get('error_sample')}")
                        figures.setdefault((name, body), []).append(used / args.requests * 1e6)
                        rates.setdefault((name, body), []).append(result["rps"])
        finally:
            procs.stop_all()
    print(f"gateway CPU time per request (user + system, us), concurrency {args.concurrency}, "
          f"{args.requests} requests x {args.rounds} rounds; median (min..max) and req/s median")
    for body in ("tiny", "cc"):
        for name, _, _ in targets:
            values = figures[(name, body)]
            print(f"  {body:5} {statistics.median(values):7.1f} us ({min(values):.1f}..{max(values):.1f})"
                  f"  {statistics.median(rates[(name, body)]):7,.0f} req/s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
