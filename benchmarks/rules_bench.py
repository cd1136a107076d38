"""Figures for the rule engine: resolve() per call, and load+validate+compile of a big file.

    python benchmarks/rules_bench.py [--quick]

Targets (issue 2): resolve < 5 us at 1,000 routes; load of a 1,000-route file < 100 ms.

The generated routes mix what people write: exact names (two per route), prefix globs
(``family-7-*``), globs with sets and ``?`` (``vendor-7-v[0-9]``, ``vendor-7-?-mini``), and,
every 50th route, an infix glob with no literal prefix (``*-tag-50``), the kind every lookup
has to try. There is no catch-all, so a miss is possible.

resolve() is timed three ways:
- cached: the same name again (what Claude Code does: a handful of names, over and over);
- first lookup: a name never seen, in a glob bucket already used (the cache does not help);
- miss: a name no route matches, first lookup and cached.
Plus "cold": the very first lookup that touches a bucket, which compiles its regex.
Each figure is the median over rounds of the mean per call in a round (best in brackets).

Times are CPU time of this process (time.process_time), not wall time: the project machine
has 2 cores that other engineers' test runs share, and waiting for a core is not the rule
engine's cost. On an idle machine the two agree (all of this is single-threaded); load
figures print both.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rules.loader import compile_document, load_bytes  # noqa: E402
from rules.matching import Matcher  # noqa: E402
from rules.shadowing import find_shadowed  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PROVIDERS = ("anthropic", "zai", "lan", "openrouter", "local")


def route_patterns(n: int) -> list[list[str]]:
    """``n`` routes' match lists, mixing exact names and globs."""
    routes: list[list[str]] = []
    for i in range(n):
        kind = i % 3
        if i % 50 == 49:
            routes.append([f"*-tag-{i}"])
        elif kind == 0:
            routes.append([f"model-{i}", f"Model-{i}-latest"])
        elif kind == 1:
            routes.append([f"family-{i}-*"])
        else:
            routes.append([f"vendor-{i}-v[0-9]", f"vendor-{i}-?-mini"])
    return routes


def routes_toml(n: int) -> bytes:
    """A routes.toml with ``n`` such routes over a few providers."""
    out = ["version = 1", ""]
    for name in PROVIDERS:
        out += [
            f"[providers.{name}]",
            f'base_url = "https://{name}.example/api"',
            f'key = {{ env = "{name.upper()}_API_KEY" }}',
            "",
        ]
    for i, patterns in enumerate(route_patterns(n)):
        match = ", ".join(f'"{p}"' for p in patterns)
        provider = PROVIDERS[i % len(PROVIDERS)]
        out += ["[[route]]", f'name = "r{i}"', f"match = [{match}]"]
        if i % 4 == 0:
            out.append(f'to = [{{ provider = "{provider}", model = "m-{i}" }}, {{ provider = "anthropic" }}]')
        else:
            out.append(f'to = "{provider}"')
        out.append("")
    return "\n".join(out).encode()


def per_call_ns(run: Callable[[], None], calls: int, rounds: int) -> tuple[float, float]:
    """(median, best) over ``rounds`` of the mean ns per call of ``run`` (which makes ``calls`` calls)."""
    samples = []
    for _ in range(rounds):
        gc.disable()
        start = time.process_time_ns()
        run()
        elapsed = time.process_time_ns() - start
        gc.enable()
        samples.append(elapsed / calls)
    return statistics.median(samples), min(samples)


def fmt_us(median_best: tuple[float, float]) -> str:
    median, best = median_best
    return f"{median / 1000:7.2f} us [{best / 1000:6.2f}]"


def bench_resolve(n: int, rounds: int, calls: int) -> list[str]:
    routes = route_patterns(n)
    matcher = Matcher(routes)
    mid = n // 2
    exact_i = next(i for i in range(mid, n) if i % 3 == 0 and i % 50 != 49)
    glob_i = next(i for i in range(mid, n) if i % 3 == 1 and i % 50 != 49)
    set_i = next(i for i in range(n - 1, -1, -1) if i % 3 == 2 and i % 50 != 49)

    # Cold: the first lookup into each bucket compiles its regex.
    cold_names = [f"family-{i}-cold" for i in range(1, n, 3) if i % 50 != 49][:calls]
    start = time.process_time_ns()
    for name in cold_names:
        matcher.resolve(name)
    cold = (time.process_time_ns() - start) / max(1, len(cold_names))

    # Warm every bucket used below, then time names the cache has never seen.
    for name in (f"family-{glob_i}-warm", f"vendor-{set_i}-v1"):
        assert matcher.resolve(name) >= 0, name
    counter = iter(range(10**9))

    def fresh(prefix: str, suffix: str) -> Callable[[], None]:
        def run() -> None:
            resolve = matcher.resolve
            base = next(counter) * calls
            for k in range(base, base + calls):
                resolve(f"{prefix}{k}{suffix}")

        return run

    def cached(name: str) -> Callable[[], None]:
        assert matcher.resolve(name) is not None

        def run() -> None:
            resolve = matcher.resolve
            for _ in range(calls):
                resolve(name)

        return run

    # The f-string building the name costs time too: measure it alone and subtract it.
    def build_only() -> None:
        base = next(counter) * calls
        for k in range(base, base + calls):
            f"family-{glob_i}-{k}"

    overhead = per_call_ns(build_only, calls, rounds)[0]

    def minus_overhead(m: tuple[float, float]) -> tuple[float, float]:
        return m[0] - overhead, m[1] - overhead

    exact_name, glob_name, set_name = f"model-{exact_i}", f"family-{glob_i}-x", f"vendor-{set_i}-v7"
    assert routes[matcher.resolve(exact_name)] == routes[exact_i]
    assert matcher.resolve(glob_name) == glob_i and matcher.resolve(set_name) == set_i
    assert matcher.resolve("gpt-5-unknown") == -1

    return [
        f"{n:>6} routes  cached: exact {fmt_us(per_call_ns(cached(exact_name), calls, rounds))}"
        f"  glob {fmt_us(per_call_ns(cached(glob_name), calls, rounds))}"
        f"  miss {fmt_us(per_call_ns(cached('gpt-5-unknown'), calls, rounds))}",
        f"{'':>6}         first:  glob {fmt_us(minus_overhead(per_call_ns(fresh(f'family-{glob_i}-', ''), calls, rounds)))}"
        f"  set  {fmt_us(minus_overhead(per_call_ns(fresh(f'vendor-{set_i}-', '-mini'), calls, rounds)))}"
        f"  miss {fmt_us(minus_overhead(per_call_ns(fresh('gpt-', '-unknown'), calls, rounds)))}",
        f"{'':>6}         cold (first lookup into a bucket, compiles its regex): {cold / 1000:7.2f} us",
    ]


def timed_ms(run: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """(best CPU, median CPU, median wall) time in ms of ``run`` over ``runs`` runs."""
    cpu, wall = [], []
    for _ in range(runs):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        run()
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start_wall) * 1000)
    return min(cpu), statistics.median(cpu), statistics.median(wall)


def bench_load(n: int, runs: int) -> list[str]:
    data = routes_toml(n)
    env = {f"{p.upper()}_API_KEY": "k" for p in PROVIDERS}
    rules = load_bytes(data, env=env)  # also warms the validator (built once per process)
    assert len(rules.routes) == n and not rules.warnings, rules.warnings[:3]
    doc = tomllib.loads(data.decode())
    patterns = [r["match"] for r in doc["route"]]
    lines = []
    for label, run in [
        ("load_bytes (TOML + schema + checks + compile)", lambda: load_bytes(data, env=env)),
        ("  of which tomllib.loads", lambda: tomllib.loads(data.decode())),
        ("  of which compile_document", lambda: compile_document(doc, env=env)),
        ("  of which find_shadowed", lambda: find_shadowed(patterns)),
    ]:
        best, median, wall = timed_ms(run, runs)
        lines.append(
            f"{n:>6} routes, {len(data) / 1024:4.0f} KiB  {label:<46} "
            f"best {best:7.1f} ms  median {median:7.1f} ms  (wall median {wall:7.1f} ms)"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args(argv)
    rounds, calls, runs = (3, 2_000, 3) if args.quick else (9, 20_000, 11)

    print(f"Python {sys.version.split()[0]} on {sys.platform}; resolve: median of {rounds} rounds "
          f"of {calls:,} calls [best]; load: {runs} runs")
    print("\nresolve() per call")
    for n in (10, 100, 1_000, 10_000):
        for line in bench_resolve(n, rounds, calls):
            print(line)
    print("\nload + validate + compile")
    for n in (1_000, 10_000):
        for line in bench_load(n, runs if n <= 1_000 else max(3, runs // 3)):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
