"""One command for every figure of issue 8: direct vs through the proxy, A/B alternated.

    python benchmarks/run.py [--quick] [--workers N] [--target gateway|bare-aiohttp|bare-sanic]

Starts the fake upstream, the proxy under test and the load generator as separate processes on
free loopback ports, waits for each to answer (polling, with a deadline), checks one plain and
one streamed request through the proxy, warms up, and then, for several rounds, measures every
scenario once direct to the upstream (A) and once through the proxy (B). Each figure printed is
the median over rounds; each delta is the median of the per-round differences B - A, so slow
drift in the machine's load cancels out. See benchmarks/README.md for the method.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import orjson
from _common import free_port, http_get, raise_nofile_limit, stop_groups, wait_ready

HERE = Path(__file__).resolve().parent
PY = sys.executable
BENCH_KEY = "bench-upstream-key"

ROUTES_TOML = """\
version = 1
{server}
[providers.up]
base_url = "http://127.0.0.1:{port}"
key = {{ env = "BENCH_KEY" }}

[[route]]
name = "all"
match = "*"
to = "up"
"""


@dataclass(frozen=True)
class Scenario:
    """One row group of the table: what the load generator sends, and how."""

    label: str
    body: str
    concurrency: int
    stream: bool = False
    deltas: int = 10
    delay_ms: float = 0.0

    def spec(self, url: str, duration_s: float, warmup_s: float) -> dict[str, Any]:
        """The loadgen.Spec for this scenario against `url`, as JSON-ready dict."""
        return {
            "url": url,
            "body": self.body,
            "stream": self.stream,
            "concurrency": self.concurrency,
            "duration_s": duration_s,
            "warmup_s": warmup_s,
            "deltas": self.deltas,
            "delay_ms": self.delay_ms,
        }


PLAIN = [
    Scenario(f"{body} c{c}", body, c) for body in ("tiny", "cc") for c in (1, 8, 32)
]
# Streams of the captured Claude Code body (Claude Code always streams), 15 events 10 ms apart:
# long enough to see held-back events as 10 ms steps in the largest gap.
STREAMING = [Scenario(f"stream cc c{c}", "cc", c, True, 10, 10.0) for c in (1, 8)]


@dataclass(frozen=True)
class Profile:
    """How long to measure: a full run under ~5 minutes, --quick under ~1 minute."""

    rounds: int
    duration_s: float
    warmup_s: float
    many_streams: int
    many_deltas: int
    many_delay_ms: float


FULL = Profile(rounds=5, duration_s=2.0, warmup_s=0.3, many_streams=1000, many_deltas=15, many_delay_ms=200)
# The many-streams run: each stream lasts well beyond the 1 s ramp, so all are open at once.
QUICK = Profile(rounds=2, duration_s=0.6, warmup_s=0.2, many_streams=1000, many_deltas=10, many_delay_ms=200)


# processes


class Processes:
    """Children started in their own sessions, so each is stopped with its whole tree."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdin: int | None = None,
        stdout: int | IO[bytes] | None = None,
    ) -> subprocess.Popen[bytes]:
        log = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdin=stdin,
            stdout=stdout if stdout is not None else log,
            stderr=log,
            start_new_session=True,
        )
        self.procs.append((name, proc))
        return proc

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop_all(self) -> None:
        stop_groups([proc for _, proc in self.procs], signal.SIGTERM, grace_s=10)


class LoadGen:
    """The load generator process, fed one JSON spec per line."""

    def __init__(self, procs: Processes) -> None:
        self.proc = procs.start(
            "loadgen",
            [PY, str(HERE / "loadgen.py"), "--stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def measure(self, spec: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(orjson.dumps(spec) + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the load generator exited; see its log")
        result: dict[str, Any] = orjson.loads(line)
        if "fatal" in result:
            raise RuntimeError(f"load generator failed: {result['fatal']}")
        return result


def _server_table(gateway: Path) -> str:
    """The usage ledger stays on (its cost is part of what is measured), in the run's temporary
    directory rather than the state directory of whoever runs the benchmark; a build from before
    the ledger (an A/B's "before") has no such key and gets none."""
    schema = subprocess.run([str(gateway), "schema"], capture_output=True, text=True, timeout=30).stdout
    return '\n[server]\nledger = "ledger.db"\n' if '"ledger"' in schema else ""


def start_target(
    target: str,
    workers: int,
    upstream_port: int,
    procs: Processes,
    tmp: Path,
    extra_args: list[str],
    gateway_bin: Path | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start the proxy under test; return it and its port once it answers /health."""
    port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    if target == "gateway":
        gateway = gateway_bin or Path(PY).parent / "gateway"
        if not gateway.exists():
            gateway = Path(shutil.which("gateway") or "gateway")
        config = tmp / "routes.toml"
        config.write_text(ROUTES_TOML.format(port=upstream_port, server=_server_table(gateway)))
        argv = [str(gateway), "serve", "--config", str(config), "--port", str(port),
                "--workers", str(workers)]
        # --no-watch keeps the file watcher out of the measurement; older builds lack the flag.
        help_text = subprocess.run(
            [str(gateway), "serve", "--help"], capture_output=True, text=True, timeout=30
        ).stdout
        if "--no-watch" in help_text:
            argv.append("--no-watch")
        argv += extra_args
        # cwd = the temp dir, so no stray ./.env or ./routes.toml takes part.
        proc = procs.start("proxy", argv, env={"BENCH_KEY": BENCH_KEY}, cwd=tmp)
    else:
        kind = {"bare-aiohttp": "aiohttp", "bare-sanic": "sanic-httpx-aiohttp",
                "bare-sanic-aiohttp": "sanic-aiohttp"}[target]
        proc = procs.start(
            "proxy",
            [PY, str(HERE / "bare_proxy.py"), "--kind", kind, "--upstream", upstream,
             "--port", str(port), "--workers", str(workers)],
        )
    wait_ready(proc, port, "/health", deadline_s=60)
    return proc, port


def upstream_stats(port: int, reset: bool = False) -> dict[str, int]:
    """The fake upstream's counters; `reset` restarts its open-streams high-water mark."""
    stats: dict[str, int] = orjson.loads(http_get(port, "/stats?reset" if reset else "/stats")[1])
    return stats


def upstream_messages(port: int) -> int:
    """How many requests the fake upstream has answered, streamed or not."""
    stats = upstream_stats(port)
    return int(stats["messages"]) + int(stats["streams"])


def sanity_check(loadgen: LoadGen, proxy_url: str, upstream_port: int) -> None:
    """One plain and one streamed request through the proxy, and proof they reached upstream."""
    before = upstream_messages(upstream_port)
    plain = loadgen.measure(
        {"url": proxy_url, "body": "cc", "requests": 1, "warmup_s": 0, "concurrency": 1}
    )
    stream = loadgen.measure(
        {"url": proxy_url, "body": "cc", "stream": True, "requests": 1, "warmup_s": 0,
         "concurrency": 1, "deltas": 3, "delay_ms": 5}
    )
    after = upstream_messages(upstream_port)
    problems = []
    if plain["ok"] != 1:
        problems.append(f"plain request failed: {plain['error_sample']}")
    if stream["ok"] != 1:
        problems.append(f"streamed request failed: {stream['error_sample']}")
    elif stream["incomplete"] or stream["events_min"] != 3 + 5:
        problems.append(
            f"stream arrived with {stream['events_min']} events (expected 8), "
            f"incomplete={stream['incomplete']}; is the query string forwarded?"
        )
    if after - before != 2:
        problems.append(f"the fake upstream saw {after - before} requests instead of 2")
    if problems:
        raise RuntimeError("sanity check through the proxy failed: " + "; ".join(problems))


# measurement


Result = dict[str, Any]


def measure_rounds(
    loadgen: LoadGen,
    direct: str,
    proxy: str,
    profile: Profile,
    scenarios: list[Scenario],
    progress: Callable[[str], None],
) -> dict[str, list[tuple[Result, Result]]]:
    """For each round, each scenario: A (direct) then B (proxy). Returns per-round pairs."""
    pairs: dict[str, list[tuple[Result, Result]]] = {s.label: [] for s in scenarios}
    for r in range(profile.rounds):
        for s in scenarios:
            progress(f"round {r + 1}/{profile.rounds}: {s.label}")
            a = loadgen.measure(s.spec(direct, profile.duration_s, profile.warmup_s))
            b = loadgen.measure(s.spec(proxy, profile.duration_s, profile.warmup_s))
            pairs[s.label].append((a, b))
    return pairs


def pick(result: Result, path: str) -> float:
    """`lat_ms.p50` -> result["lat_ms"]["p50"]."""
    value: Any = result
    for key in path.split("."):
        value = value[key]
    return float(value)


@dataclass
class Row:
    """One printed line: medians over rounds, and the check against an issue-8 target."""

    label: str
    direct: float
    proxy: float
    delta: float
    unit: str
    target: str = ""
    met: bool | None = None
    spread: tuple[float, float] = (0.0, 0.0)  # smallest and largest per-round delta

    @property
    def ratio(self) -> float:
        return self.proxy / self.direct if self.direct else float("nan")


def row(
    label: str,
    pairs: list[tuple[Result, Result]],
    path: str,
    unit: str,
    limit: float | None = None,
    kind: str = "delta",
) -> Row:
    """Median of each side and of the paired differences; `kind` says how the target reads."""
    a = [pick(x, path) for x, _ in pairs]
    b = [pick(y, path) for _, y in pairs]
    deltas = [y - x for x, y in zip(a, b)]
    out = Row(label, statistics.median(a), statistics.median(b), statistics.median(deltas), unit,
              spread=(min(deltas), max(deltas)))
    if limit is not None:
        if kind == "delta":
            out.target, out.met = f"added <= {limit:g} {unit}", out.delta <= limit
        elif kind == "abs-delta":
            out.target, out.met = f"within {limit:g} {unit}", abs(out.delta) <= limit
        elif kind == "ratio":
            out.target, out.met = f">= {limit:.0%} of direct", out.ratio >= limit
    return out


def build_rows(pairs: dict[str, list[tuple[Result, Result]]]) -> list[tuple[str, list[Row]]]:
    """The table, grouped; targets from issue 8 item 2 where one applies."""
    groups: list[tuple[str, list[Row]]] = []
    targets_p50 = {"tiny c1": 1.0, "tiny c8": 3.0, "cc c8": 3.0}
    for label in [s.label for s in PLAIN]:
        p = pairs[label]
        rows = [
            row("p50 ms", p, "lat_ms.p50", "ms", targets_p50.get(label)),
            row("p99 ms", p, "lat_ms.p99", "ms", 6.0 if label in ("tiny c1", "tiny c8") else None),
            row("req/s", p, "rps", "req/s", 0.5 if label.endswith("c32") else None, "ratio"),
        ]
        errors = sum(x["errors"] + y["errors"] for x, y in p)
        groups.append((f"{label}" + (f"  ERRORS: {errors}" if errors else ""), rows))
    for s in STREAMING:
        p = pairs[s.label]
        rows = [
            row("TTFB p50 ms", p, "ttfb_ms.p50", "ms", 1.5),
            row("TTFB p99 ms", p, "ttfb_ms.p99", "ms"),
            row("total p50 ms", p, "total_ms.p50", "ms"),
            row("largest gap p50 ms", p, "gap_ms.p50", "ms", 2.0, "abs-delta"),
            row("largest gap max ms", p, "gap_ms.max", "ms"),
        ]
        bad = sum(x["errors"] + y["errors"] + x.get("incomplete", 0) + y.get("incomplete", 0)
                  for x, y in p)
        events = s.deltas + 5  # message_start, content_block_start, deltas, stop, message_delta, stop
        title = f"{s.label}: {events} events {s.delay_ms:g} ms apart"
        groups.append((title + (f"  ERRORS/INCOMPLETE: {bad}" if bad else ""), rows))
    return groups


# output


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in ("sanic", "httpx", "aiohttp", "httpx-aiohttp", "uvloop", "orjson", "claude-gateway"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "-"
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
    }


def fmt(value: float, unit: str) -> str:
    if unit == "req/s":
        return f"{value:,.0f}"
    return f"{value:.2f}"


def print_summary(groups: list[tuple[str, list[Row]]], many: tuple[Result, Result] | None) -> None:
    """One line per issue-8 target, so a reader sees the verdicts without scanning the table."""
    verdicts = [
        (f"{title.split(':')[0].split('  ')[0]} {r.label}: {r.target}", r.met)
        for title, rows in groups
        for r in rows
        if r.met is not None
    ]
    if many is not None and "rss_peak_mb" in many[1]:
        verdicts.append(("1000 streams: proxy RSS peak < 200 MB", many[1]["rss_peak_mb"] < 200))
    met = sum(1 for _, ok in verdicts if ok)
    print(f"targets (issue 8 item 2): {met} met, {len(verdicts) - met} missed")
    for text, ok in verdicts:
        print(f"  {'met   ' if ok else 'MISSED'} {text}")
    print()


def print_report(
    info: dict[str, Any],
    groups: list[tuple[str, list[Row]]],
    many: tuple[Result, Result] | None,
    profile: Profile,
) -> None:
    v = info["versions"]
    print()
    print(f"machine: {info['cores']} cores ({info['cpu']}), Linux {info['kernel']}, "
          f"Python {info['python']}")
    print("versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    print(f"target: {info['target']} (workers {info['workers']}); {profile.rounds} rounds x "
          f"{profile.duration_s:g} s per measurement, A (direct) / B (proxy) alternated")
    print(f"load average: {info['load_start']} at start, {info['load_end']} at end "
          "(load generator, upstream and proxy share the cores; other work adds noise)")
    print("figures: medians over rounds; delta: median of the per-round differences B - A")
    busiest = max(float(x) for x in (info["load_start"] + " " + info["load_end"]).split()[::3])
    if busiest > 1.0:
        print(f"NOTE: 1-minute load reached {busiest:.2f} on {info['cores']} cores from other work: "
              "the figures are noisy; re-run when `uptime` shows a quiet machine")
    print()
    print("rounds: the smallest and largest per-round delta, to show how far a figure can be trusted")
    print()
    header = (f"{'':24}{'direct':>10}{'proxy':>10}{'delta':>10}{'rounds':>16}{'ratio':>8}"
              "   target")
    for title, rows in groups:
        print(title)
        print(header)
        for r in rows:
            verdict = "" if r.met is None else ("met" if r.met else "MISSED")
            delta = spread = ""
            if r.unit != "req/s":
                delta = f"{r.delta:+.2f}"
                spread = f"{r.spread[0]:+.1f}..{r.spread[1]:+.1f}"
            print(f"  {r.label:22}{fmt(r.direct, r.unit):>10}{fmt(r.proxy, r.unit):>10}"
                  f"{delta:>10}{spread:>16}{r.ratio:>7.2f}x   {r.target} {verdict}".rstrip())
        print()
    if many is None:
        return
    a, b = many
    events = profile.many_deltas + 5
    print(f"{profile.many_streams} concurrent streams: {events} events {profile.many_delay_ms:g} ms "
          f"apart, started over 1 s (one run each)")
    print(f"{'':24}{'direct':>10}{'proxy':>10}{'':>34}   target")

    def line(label: str, x: str, y: str, target: str = "") -> None:
        print(f"  {label:22}{x:>10}{y:>10}{'':>34}   {target}".rstrip())

    line("completed", f"{a['ok'] - a.get('incomplete', 0)}", f"{b['ok'] - b.get('incomplete', 0)}")
    line("errors", str(a["errors"]), str(b["errors"]))
    line("open at client (max)", str(a["client_max_open"]), str(b["client_max_open"]))
    line("open at upstream (max)", str(a["upstream_max_open"]), str(b["upstream_max_open"]))
    line("wall s", f"{a['elapsed_s']:.2f}", f"{b['elapsed_s']:.2f}")
    for key, label in (("ttfb_ms", "TTFB"), ("gap_ms", "largest gap")):
        if key in a and key in b:
            line(f"{label} p50 ms", f"{a[key]['p50']:.1f}", f"{b[key]['p50']:.1f}")
            line(f"{label} max ms", f"{a[key]['max']:.1f}", f"{b[key]['max']:.1f}")
    if "rss_peak_mb" in b:
        peak = b["rss_peak_mb"]
        verdict = "met" if peak < 200 else "MISSED"
        line("proxy RSS before MB", "", f"{b['rss_before_mb']:.1f}")
        line("proxy RSS peak MB", "", f"{peak:.1f}", f"< 200 MB {verdict}")
        line("proxy sum VmHWM MB", "", f"{b['hwm_sum_mb']:.1f}",
             f"({b['rss_processes']} processes; RSS sums count shared pages per process)")
        line("proxy PSS before MB", "", f"{b['pss_before_mb']:.1f}")
        line("proxy PSS peak MB", "", f"{b['pss_peak_mb']:.1f}")
    for side, r in (("direct", a), ("proxy", b)):
        if r["error_sample"]:
            print(f"  first {side} error: {r['error_sample']}")
    print()


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextmanager
def temp_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as name:
        yield Path(name)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; exit 1 when the harness could not measure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 short rounds, under a minute")
    parser.add_argument("--workers", type=int, default=1, help="proxy worker processes")
    parser.add_argument("--target", default="gateway",
                        choices=("gateway", "bare-aiohttp", "bare-sanic", "bare-sanic-aiohttp"))
    parser.add_argument("--rounds", type=int, help="override the profile's rounds")
    parser.add_argument("--duration", type=float, help="override seconds per measurement")
    parser.add_argument("--no-many-streams", action="store_true",
                        help="skip the 1,000 concurrent streams")
    parser.add_argument("--json", type=Path, help="also write every raw result here")
    parser.add_argument("--logs", type=Path,
                        help="keep the processes' logs in this directory (default: discarded)")
    parser.add_argument("--gateway", type=Path, metavar="PATH",
                        help="the `gateway` executable to measure (default: the one beside this "
                        "Python); before/after figures from one checkout: the old build's path")
    parser.add_argument("--gateway-args", default="",
                        help='extra `gateway serve` arguments, e.g. "--log-level warning"')
    args = parser.parse_args(argv)

    profile = QUICK if args.quick else FULL
    if args.rounds or args.duration:
        profile = Profile(**{**profile.__dict__,
                             **({"rounds": args.rounds} if args.rounds else {}),
                             **({"duration_s": args.duration} if args.duration else {})})
    raise_nofile_limit()
    info = machine() | {"target": args.target, "gateway": str(args.gateway or ""), "workers": args.workers,
                        "load_start": loadavg()}

    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    started = time.monotonic()
    with temp_dir() as tmp:
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
        procs = Processes(args.logs or tmp)
        try:
            up_port = free_port()
            upstream = procs.start("upstream", [PY, str(HERE / "fake_upstream.py"), "--port", str(up_port)])
            wait_ready(upstream, up_port, "/health", deadline_s=30)
            proxy_proc, proxy_port = start_target(
                args.target, args.workers, up_port, procs, tmp, shlex.split(args.gateway_args), args.gateway
            )
            direct = f"http://127.0.0.1:{up_port}"
            proxy = f"http://127.0.0.1:{proxy_port}"
            progress(f"upstream {direct}, {args.target} {proxy} (pid {proxy_proc.pid}) ready")
            loadgen = LoadGen(procs)
            sanity_check(loadgen, proxy, up_port)
            progress("sanity check passed; warming up")
            for url in (direct, proxy):
                loadgen.measure({"url": url, "body": "cc", "concurrency": 8, "duration_s": 1.0,
                                 "warmup_s": 0})
            pairs = measure_rounds(loadgen, direct, proxy, profile, PLAIN + STREAMING, progress)
            many: tuple[Result, Result] | None = None
            if not args.no_many_streams:
                spec = {"body": "cc", "streams": profile.many_streams,
                        "deltas": profile.many_deltas, "delay_ms": profile.many_delay_ms}
                progress(f"{profile.many_streams} concurrent streams, direct")
                upstream_stats(up_port, reset=True)
                a = loadgen.measure({"url": direct, **spec})
                a["upstream_max_open"] = upstream_stats(up_port, reset=True)["max_open_streams"]
                progress(f"{profile.many_streams} concurrent streams, through the proxy")
                b = loadgen.measure({"url": proxy, **spec, "rss_pid": proxy_proc.pid})
                # All streams open at the upstream at once proves the proxy's pool did not queue.
                b["upstream_max_open"] = upstream_stats(up_port)["max_open_streams"]
                many = (a, b)
        except (RuntimeError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            for name in ("proxy", "upstream", "loadgen"):
                tail = procs.log_tail(name)
                if tail:
                    print(f"--- {name} log (last lines) ---\n{tail}", file=sys.stderr)
            return 1
        finally:
            procs.stop_all()
    info["load_end"] = loadavg()
    groups = build_rows(pairs)
    print_report(info, groups, many, profile)
    print_summary(groups, many)
    print(f"run took {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(orjson.dumps(
            {"machine": info, "profile": profile.__dict__, "pairs": pairs, "many_streams": many},
            option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
