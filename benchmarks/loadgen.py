"""Closed-loop load generator for the Messages API: aiohttp client on uvloop, in its own process.

    # 8 concurrent clients for 5 s, tiny body, non-streaming
    python benchmarks/loadgen.py --url http://127.0.0.1:8082 --concurrency 8 --duration 5
    # streams of the captured Claude Code body: TTFB, total, largest gap between SSE events
    python benchmarks/loadgen.py --url ... --body cc --stream --deltas 10 --delay-ms 10
    # 1,000 concurrent long streams, with the RSS of the proxy's process tree
    python benchmarks/loadgen.py --url ... --streams 1000 --deltas 15 --delay-ms 200 --rss-pid PID
    # driven by run.py: one JSON spec per stdin line, one JSON result per stdout line
    python benchmarks/loadgen.py --stdio

Closed loop: C workers each send a request, wait for the whole response, and send the next, for
D seconds (after a discarded warm-up) or until N requests were sent. Latency is taken from
just before the request is written to the last byte of the response, per request.

For streams the client notes when each SSE event completes (a blank line): TTFB is the first
body byte, and the largest gap between consecutive events shows buffering. A proxy that holds
events back shows gaps of two or more inter-event delays, or a TTFB near the total time.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import uvloop
from _common import (
    MESSAGES_PATH,
    body_bytes,
    process_tree,
    raise_nofile_limit,
    request_headers,
    stream_query,
    tree_memory_kb,
    tree_pss_kb,
)

perf_counter = time.perf_counter


@dataclass
class Spec:
    """One measurement. Field names are the JSON keys of the --stdio protocol."""

    url: str
    body: str = "tiny"
    stream: bool = False
    concurrency: int = 1
    duration_s: float = 3.0
    requests: int = 0  # when > 0: stop after this many requests instead of after duration_s
    warmup_s: float = 0.3
    deltas: int = 10
    delay_ms: float = 0.0
    streams: int = 0  # when > 0: the concurrent-streams mode, this many at once
    ramp_s: float = 1.0  # streams mode: start them evenly over this time (a burst, not a SYN flood)
    rss_pid: int = 0  # streams mode: sample the memory of this process tree

    def target_url(self) -> str:
        """Base URL + path + query for this scenario."""
        if self.stream or self.streams:
            return f"{self.url}{MESSAGES_PATH}?{stream_query(self.deltas, self.delay_ms)}"
        if self.body == "cc":
            return f"{self.url}{MESSAGES_PATH}?beta=true"
        return f"{self.url}{MESSAGES_PATH}"


@dataclass
class StreamSample:
    """What one stream looked like to the client, in seconds."""

    ttfb: float
    total: float
    max_gap: float
    events: int
    complete: bool


@dataclass
class Tally:
    """Results of one measurement while it runs."""

    latencies: list[float] = field(default_factory=list)
    streams: list[StreamSample] = field(default_factory=list)
    errors: int = 0
    error_sample: str = ""
    last_done: float = 0.0

    def error(self, message: str) -> None:
        self.errors += 1
        if not self.error_sample:
            self.error_sample = message[:300]


class StatusError(Exception):
    """A response that was not 200."""


def percentiles(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    """p50/p90/p99/max by nearest rank, scaled (seconds -> ms by default)."""
    if not values:
        return {"p50": math.nan, "p90": math.nan, "p99": math.nan, "max": math.nan}
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, math.ceil(q * n) - 1))] * scale

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "max": ordered[-1] * scale}


def _session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=300, sock_connect=30),
    )


async def _plain(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> float:
    start = perf_counter()
    async with session.post(url, data=body, headers=headers) as resp:
        await resp.read()
        if resp.status != 200:
            raise StatusError(f"status {resp.status}")
    return perf_counter() - start


async def _stream(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> StreamSample:
    start = perf_counter()
    first = last_event = 0.0
    max_gap = 0.0
    events = 0
    prev_newline = False
    tail = b""
    async with session.post(url, data=body, headers=headers) as resp:
        if resp.status != 200:
            await resp.read()
            raise StatusError(f"status {resp.status}")
        async for chunk in resp.content.iter_any():
            now = perf_counter()
            if not first:
                first = now
            # An SSE event ends at a blank line; the "\n\n" may straddle two chunks.
            done = chunk.count(b"\n\n") + (prev_newline and chunk[:1] == b"\n")
            if done:
                if last_event:
                    max_gap = max(max_gap, now - last_event)
                last_event = now
                events += done
            prev_newline = chunk[-1:] == b"\n"
            tail = (tail + chunk)[-64:]
    end = perf_counter()
    return StreamSample(
        ttfb=(first or end) - start,
        total=end - start,
        max_gap=max_gap,
        events=events,
        complete=b"message_stop" in tail,
    )


async def _closed_loop(spec: Spec, session: aiohttp.ClientSession, seconds: float, tally: Tally) -> None:
    url = spec.target_url()
    body = body_bytes(spec.body, spec.stream)
    headers = request_headers(spec.body)
    deadline = perf_counter() + seconds
    budget = [spec.requests]  # shared request budget when counting requests

    async def worker() -> None:
        while True:
            if spec.requests > 0:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            elif perf_counter() >= deadline:
                return
            try:
                if spec.stream:
                    sample = await _stream(session, url, body, headers)
                    tally.streams.append(sample)
                    tally.latencies.append(sample.total)
                else:
                    tally.latencies.append(await _plain(session, url, body, headers))
            except Exception as exc:  # noqa: BLE001 - every failure is a counted error
                tally.error(f"{type(exc).__name__}: {exc}")
                # Do not spin on a dead server: a failed request still costs a little time.
                await asyncio.sleep(0.001)
            tally.last_done = perf_counter()

    await asyncio.gather(*(worker() for _ in range(spec.concurrency)))


async def run_closed_loop(spec: Spec) -> dict[str, Any]:
    """Warm up, then measure; the result is a JSON-ready dict."""
    async with _session(spec.concurrency) as session:
        if spec.warmup_s > 0:
            warm = Spec(**{**spec.__dict__, "requests": 0})
            await _closed_loop(warm, session, spec.warmup_s, Tally())
        tally = Tally()
        start = perf_counter()
        await _closed_loop(spec, session, spec.duration_s, tally)
        elapsed = max(tally.last_done, start) - start
    return _report(spec, tally, elapsed)


async def run_streams(spec: Spec) -> dict[str, Any]:
    """The concurrent-streams mode: `spec.streams` streams open at once, memory sampled."""
    url = spec.target_url()
    body = body_bytes(spec.body, True)
    headers = request_headers(spec.body)
    tally = Tally()
    memory = _MemorySampler(spec.rss_pid) if spec.rss_pid else None
    sampler = asyncio.create_task(memory.run()) if memory else None
    async with _session(0) as session:

        open_now = [0, 0]  # streams in flight, and the most at once

        async def one(delay: float) -> None:
            await asyncio.sleep(delay)
            open_now[0] += 1
            open_now[1] = max(open_now[1], open_now[0])
            try:
                tally.streams.append(await _stream(session, url, body, headers))
            except Exception as exc:  # noqa: BLE001 - every failure is a counted error
                tally.error(f"{type(exc).__name__}: {exc}")
            finally:
                open_now[0] -= 1

        start = perf_counter()
        step = spec.ramp_s / spec.streams
        await asyncio.gather(*(one(i * step) for i in range(spec.streams)))
        elapsed = perf_counter() - start
    tally.latencies = [s.total for s in tally.streams]
    result = _report(spec, tally, elapsed)
    result["client_max_open"] = open_now[1]
    if memory and sampler:
        sampler.cancel()
        result.update(memory.report())
    return result


class _MemorySampler:
    """Samples the summed VmRSS and PSS of a process tree every 250 ms; the tree is re-read each second.

    Summed RSS counts pages shared between processes (the interpreter, libraries, forked heap) once
    per process; summed PSS divides them among their users. With one process they are close.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pids = process_tree(pid)
        self.before_kb = tree_memory_kb(self.pids)[0]
        self.before_pss_kb = tree_pss_kb(self.pids)
        self.peak_kb = self.before_kb
        self.peak_pss_kb = self.before_pss_kb

    async def run(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(0.25)
            ticks += 1
            if ticks % 4 == 0:
                self.pids = process_tree(self.pid)
            self.peak_kb = max(self.peak_kb, tree_memory_kb(self.pids)[0])
            self.peak_pss_kb = max(self.peak_pss_kb, tree_pss_kb(self.pids))

    def report(self) -> dict[str, Any]:
        after_kb, hwm_kb = tree_memory_kb(self.pids)
        return {
            "rss_processes": len(self.pids),
            "rss_before_mb": self.before_kb / 1024,
            "rss_peak_mb": max(self.peak_kb, after_kb) / 1024,
            "rss_after_mb": after_kb / 1024,
            "hwm_sum_mb": hwm_kb / 1024,
            "pss_before_mb": self.before_pss_kb / 1024,
            "pss_peak_mb": self.peak_pss_kb / 1024,
        }


def _report(spec: Spec, tally: Tally, elapsed: float) -> dict[str, Any]:
    ok = len(tally.latencies)
    result: dict[str, Any] = {
        "ok": ok,
        "errors": tally.errors,
        "error_sample": tally.error_sample,
        "elapsed_s": elapsed,
        "rps": ok / elapsed if elapsed > 0 else 0.0,
        "lat_ms": percentiles(tally.latencies),
    }
    if tally.streams:
        samples = tally.streams
        result.update(
            {
                "ttfb_ms": percentiles([s.ttfb for s in samples]),
                "total_ms": percentiles([s.total for s in samples]),
                "gap_ms": percentiles([s.max_gap for s in samples]),
                "events_min": min(s.events for s in samples),
                "events_max": max(s.events for s in samples),
                "incomplete": sum(not s.complete for s in samples),
            }
        )
    return result


async def measure(spec: Spec) -> dict[str, Any]:
    """Run one measurement of whichever mode the spec names."""
    if spec.streams > 0:
        return await run_streams(spec)
    return await run_closed_loop(spec)


async def _stdio() -> None:
    """One JSON spec per stdin line -> one JSON result per stdout line, until EOF."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        try:
            result = await measure(Spec(**orjson.loads(line)))
        except Exception as exc:  # noqa: BLE001 - reported to the runner, which fails loudly
            result = {"fatal": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        sys.stdout.flush()


def _print_human(result: dict[str, Any]) -> None:
    def fmt(p: dict[str, float]) -> str:
        return " ".join(f"{k}={v:.2f}" for k, v in p.items())

    print(f"ok={result['ok']} errors={result['errors']} req/s={result['rps']:.0f} "
          f"elapsed={result['elapsed_s']:.2f}s")
    print(f"latency ms: {fmt(result['lat_ms'])}")
    for key in ("ttfb_ms", "total_ms", "gap_ms"):
        if key in result:
            print(f"{key[:-3]} ms: {fmt(result[key])}")
    if "events_min" in result:
        print(f"events per stream: {result['events_min']}..{result['events_max']}, "
              f"incomplete: {result['incomplete']}")
    if "rss_peak_mb" in result:
        print(f"RSS of pid tree ({result['rss_processes']} processes): before "
              f"{result['rss_before_mb']:.1f} MB, peak {result['rss_peak_mb']:.1f} MB, "
              f"sum of VmHWM {result['hwm_sum_mb']:.1f} MB; PSS before "
              f"{result['pss_before_mb']:.1f} MB, peak {result['pss_peak_mb']:.1f} MB")
    if result["error_sample"]:
        print(f"first error: {result['error_sample']}")


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stdio", action="store_true", help="serve JSON specs from stdin (run.py)")
    parser.add_argument("--url", help="base URL, e.g. http://127.0.0.1:8082")
    parser.add_argument("--body", choices=("tiny", "cc"), default="tiny")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--concurrency", "-c", type=int, default=1)
    parser.add_argument("--duration", "-d", type=float, default=3.0, help="seconds")
    parser.add_argument("--requests", "-n", type=int, default=0, help="stop after N requests")
    parser.add_argument("--warmup", type=float, default=0.3, help="seconds, discarded")
    parser.add_argument("--deltas", type=int, default=10)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--streams", type=int, default=0, help="concurrent-streams mode")
    parser.add_argument("--ramp", type=float, default=1.0, help="streams mode: start over S seconds")
    parser.add_argument("--rss-pid", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the raw JSON result")
    args = parser.parse_args(argv)
    raise_nofile_limit()
    if args.stdio:
        uvloop.run(_stdio())
        return
    if not args.url:
        parser.error("--url is required (or --stdio)")
    spec = Spec(
        url=args.url.rstrip("/"),
        body=args.body,
        stream=args.stream,
        concurrency=args.concurrency,
        duration_s=args.duration,
        requests=args.requests,
        warmup_s=args.warmup,
        deltas=args.deltas,
        delay_ms=args.delay_ms,
        streams=args.streams,
        ramp_s=args.ramp,
        rss_pid=args.rss_pid,
    )
    result = uvloop.run(measure(spec))
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_human(result)


if __name__ == "__main__":
    main()
