"""Figures for the rule engine: resolve() per call, and load+validate+compile of a big file.

    python benchmarks/rules_bench.py [--quick]

Targets (issue 2): resolve < 5 us at 1,000 routes; load of a 1,000-route file < 100 ms.
With ``when`` conditions (routing on Claude Code's hint headers): model-only configs resolve
as fast as before, and RuleSet.resolve(model, facts) < 5 us at 1,000 routes, conditions
included.

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

RuleSet.resolve(model, facts) is timed on a 1,000-route file where every 10th route has a
``when`` and a hundred subagent routes share ``match = "claude-*"``, one per agent type (the
case a linear scan of conditions would make slow): cached (the same name; a new facts object
per call, as the gateway builds one per request), and first lookup of a name never seen.
RequestFacts.from_headers is timed alone: the gateway pays it once per request.

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

from rules.conditions import RequestFacts  # noqa: E402
from rules.loader import compile_document, load_bytes  # noqa: E402
from rules.matching import Matcher  # noqa: E402
from rules.model import RuleSet  # noqa: E402
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


AGENT_ROUTES = 100  # subagent routes on "claude-*", one per agent type, in the conditional file

# Every 10th generated route of the conditional file gets one of these, in turn.
WHENS = (
    'when = { request_class = "subagent" }',
    'when = { request_class = ["compaction", "auxiliary"] }',
    "when = { server_tools = true }",
    'when = { request_class = "subagent", agent_type = "agent-{i}-*" }',
)


def conditional_routes(n: int) -> list[tuple[list[str], str | None]]:
    """``n`` routes with conditions: the claude-* block first, then the generated mix."""
    routes: list[tuple[list[str], str | None]] = [
        (["claude-*"], f'when = {{ request_class = "subagent", agent_type = "custom-agent-{k}" }}')
        for k in range(AGENT_ROUTES)
    ]
    routes.append((["claude-*"], 'when = { request_class = ["subagent", "compaction"] }'))
    routes.append((["claude-*"], None))
    rest = n - len(routes)
    for i, patterns in enumerate(route_patterns(rest)):
        routes.append((patterns, WHENS[(i // 10) % len(WHENS)].replace("{i}", str(i)) if i % 10 == 0 else None))
    return routes


def routes_toml(n: int, *, conditional: bool = False) -> bytes:
    """A routes.toml with ``n`` such routes over a few providers (with ``when``s: see above)."""
    out = ["version = 1", ""]
    for name in PROVIDERS:
        out += [
            f"[providers.{name}]",
            f'base_url = "https://{name}.example/api"',
            f'key = {{ env = "{name.upper()}_API_KEY" }}',
            "",
        ]
    routes = conditional_routes(n) if conditional else [(p, None) for p in route_patterns(n)]
    for i, (patterns, when) in enumerate(routes):
        match = ", ".join(f'"{p}"' for p in patterns)
        provider = PROVIDERS[i % len(PROVIDERS)]
        out += ["[[route]]", f'name = "r{i}"', f"match = [{match}]"]
        if when is not None:
            out.append(when)
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


def load_quietly(data: bytes) -> RuleSet:
    env = {f"{p.upper()}_API_KEY": "k" for p in PROVIDERS}
    return load_bytes(data, env=env)


def bench_ruleset_resolve(n: int, rounds: int, calls: int) -> list[str]:
    """RuleSet.resolve: model-only (the path every request of a config without `when` takes)
    and with conditions."""
    plain = load_quietly(routes_toml(n))
    glob_name = f"family-{next(i for i in range(n // 2, n) if i % 3 == 1 and i % 50 != 49)}-x"
    assert plain.resolve(glob_name) is not None and not plain.conditional

    def cached(rules: RuleSet, name: str, facts: list[RequestFacts] | None = None) -> Callable[[], None]:
        """``calls`` lookups of ``name``, without facts or cycling through ``facts``."""
        rules.resolve(name, facts[0] if facts else None)
        sequence = (facts * (calls // len(facts) + 1))[:calls] if facts else None

        def run() -> None:
            resolve = rules.resolve
            if sequence is None:
                for _ in range(calls):
                    resolve(name)
            else:
                for each in sequence:
                    resolve(name, each)

        return run

    lines = [
        (
            f"{n:>6} routes  model-only  cached: glob {fmt_us(per_call_ns(cached(plain, glob_name), calls, rounds))}"
            f"  miss {fmt_us(per_call_ns(cached(plain, 'gpt-5-unknown'), calls, rounds))}"
            f"  glob, with facts {fmt_us(per_call_ns(cached(plain, glob_name, [RequestFacts()]), calls, rounds))}"
        )
    ]

    rules = load_quietly(routes_toml(n, conditional=True))
    assert rules.conditional and rules.uses_server_tools
    model = "claude-sonnet-5-5"
    headers = {
        "main": {"x-claude-code-request-class": "main"},
        "subagent": {"x-claude-code-request-class": "subagent", "x-claude-code-agent-type": "general-purpose"},
        "custom agent": {"x-claude-code-request-class": "subagent", "x-claude-code-agent-type": "custom-agent-57"},
    }
    # A new facts object per call, as the gateway makes one per request; 64 of each.
    facts = {label: [RequestFacts.from_headers(h) for _ in range(64)] for label, h in headers.items()}
    want = {"main": f"r{AGENT_ROUTES + 1}", "subagent": f"r{AGENT_ROUTES}", "custom agent": "r57"}
    for label, route in want.items():
        found = rules.resolve(model, facts[label][0])
        assert found is not None and found.name == route, (label, found)
    assert len(rules.candidates(model)) == AGENT_ROUTES + 2

    counter = iter(range(10**9))

    def first_lookup(run_facts: RequestFacts) -> Callable[[], None]:
        def run() -> None:
            resolve = rules.resolve
            base = next(counter) * calls
            for k in range(base, base + calls):
                resolve(f"claude-{k}", run_facts)

        return run

    def build_only() -> None:
        base = next(counter) * calls
        for k in range(base, base + calls):
            f"claude-{k}"

    overhead = per_call_ns(build_only, calls, rounds)[0]
    first = per_call_ns(first_lookup(facts["custom agent"][0]), calls, rounds)
    raw = headers["custom agent"]

    def from_headers() -> None:
        make = RequestFacts.from_headers
        for _ in range(calls):
            make(raw)

    parts = [
        f"{label} {fmt_us(per_call_ns(cached(rules, model, facts[label]), calls, rounds))}"
        for label in ("main", "subagent", "custom agent")
    ]
    lines += [
        f"{'':>6}         with when, cached: " + "  ".join(parts),
        (
            f"{'':>6}         with when, first lookup of a name (custom agent): "
            f"{fmt_us((first[0] - overhead, first[1] - overhead))}"
        ),
        (
            f"{'':>6}         RequestFacts.from_headers (once per request): "
            f"{fmt_us(per_call_ns(from_headers, calls, rounds))}"
        ),
    ]
    return lines


def timed_ms(run: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """(best CPU, median CPU, median wall) time in ms of ``run`` over ``runs`` runs."""
    cpu, wall = [], []
    for _ in range(runs):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        run()
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start_wall) * 1000)
    return min(cpu), statistics.median(cpu), statistics.median(wall)


def bench_load(n: int, runs: int, *, conditional: bool = False) -> list[str]:
    data = routes_toml(n, conditional=conditional)
    env = {f"{p.upper()}_API_KEY": "k" for p in PROVIDERS}
    rules = load_bytes(data, env=env)  # also warms the validator (built once per process)
    assert len(rules.routes) == n and not rules.warnings, rules.warnings[:3]
    doc = tomllib.loads(data.decode())
    patterns = [r["match"] for r in doc["route"]]
    when = [r.when for r in rules.routes]
    lines = []
    for label, run in [
        ("load_bytes (TOML + schema + checks + compile)", lambda: load_bytes(data, env=env)),
        ("  of which tomllib.loads", lambda: tomllib.loads(data.decode())),
        ("  of which compile_document", lambda: compile_document(doc, env=env)),
        ("  of which find_shadowed", lambda: find_shadowed(patterns, when)),
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
    print("\nRuleSet.resolve(model, facts) per call (model-only file, then one with `when`)")
    for line in bench_ruleset_resolve(1_000, rounds, calls):
        print(line)
    print("\nload + validate + compile")
    for n in (1_000, 10_000):
        for line in bench_load(n, runs if n <= 1_000 else max(3, runs // 3)):
            print(line)
    print("\nload + validate + compile, with `when` on every 10th route and 100 agent routes")
    for n in (1_000, 10_000):
        for line in bench_load(n, runs if n <= 1_000 else max(3, runs // 3), conditional=True):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
