"""Shared pieces of the benchmark scripts: request bodies, ports, readiness, memory of a process tree.

Standard library only (plus orjson for the one-time body serialisation), so that every script
starts fast and the numbers are not coloured by what a helper imports.
"""

from __future__ import annotations

import http.client
import os
import resource
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(
    os.environ.get("BENCH_FIXTURE", REPO / "tests" / "fakes" / "captured" / "cc_print_haiku_stream.json")
)

MESSAGES_PATH = "/v1/messages"
# Claude Code always calls with ?beta=true; the proxy must keep the query string.
CC_QUERY = "beta=true"

TINY_BODY: dict[str, Any] = {
    "model": "claude-haiku-5-5",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}

# The credential the load generator sends as a client; the gateway target replaces it with
# BENCH_KEY from its routes.toml, the bare proxies forward it as is.
CLIENT_KEY = "bench-client-key"

BASE_HEADERS: dict[str, str] = {
    "content-type": "application/json",
    "anthropic-version": "2023-06-01",
    "x-api-key": CLIENT_KEY,
}

# Headers of the captured request that describe the transport, not the call: the client
# library recomputes them (or they would lie about our body, e.g. content-length).
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "connection", "accept-encoding"})


def body_bytes(kind: str, stream: bool) -> bytes:
    """Serialise the named body once, compactly, with `stream` set as the scenario needs.

    `kind` is "tiny" (a one-line request) or "cc" (the `body` of the captured Claude Code
    request, about 17 KB compact).
    """
    if kind == "tiny":
        body = dict(TINY_BODY)
    elif kind == "cc":
        body = dict(orjson.loads(FIXTURE.read_bytes())["body"])
    else:
        raise ValueError(f"unknown body kind {kind!r} (known: tiny, cc)")
    body["stream"] = stream
    return orjson.dumps(body)


def request_headers(kind: str) -> dict[str, str]:
    """Headers a client of that kind sends: the captured Claude Code set for "cc"."""
    if kind != "cc":
        return dict(BASE_HEADERS)
    captured: dict[str, str] = orjson.loads(FIXTURE.read_bytes())["headers"]
    headers = {k: v for k, v in captured.items() if k.lower() not in _TRANSPORT_HEADERS}
    headers["x-api-key"] = CLIENT_KEY
    return headers


def stream_query(deltas: int, delay_ms: float) -> str:
    """Query string asking the fake upstream for a stream shape (it ignores `beta`)."""
    return f"{CC_QUERY}&deltas={deltas}&delay_ms={delay_ms:g}"


def free_port() -> int:
    """A loopback port free right now (bind to 0, read it, release it)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_nofile_limit() -> None:
    """Lift the soft open-files limit to the hard one; children inherit it.

    1,000 concurrent streams mean 1,000 sockets in the load generator and 2,000 in the proxy.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def http_get(port: int, path: str, timeout: float = 1.0) -> tuple[int, bytes]:
    """One GET on a fresh loopback connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(
    proc: subprocess.Popen[bytes], port: int, path: str = "/health", deadline_s: float = 30.0
) -> float:
    """Poll GET `path` until it answers 200; return the seconds it took.

    Raises RuntimeError if the process exits or the deadline passes: a runner must never
    measure a server that is not there.
    """
    start = time.monotonic()
    delay = 0.01
    last_error = "no answer"
    while True:
        code = proc.poll()
        if code is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {code} before it was ready")
        try:
            status, _ = http_get(port, path, timeout=1.0)
            if status == 200:
                return time.monotonic() - start
            last_error = f"status {status}"
        except OSError as exc:
            last_error = str(exc)
        if time.monotonic() - start > deadline_s:
            raise RuntimeError(f"port {port} not ready after {deadline_s:.0f} s: {last_error}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def _ppid_map() -> dict[int, int]:
    """pid -> parent pid for every process we can see."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (Sanic runs a manager process plus N workers)."""
    parents = _ppid_map()
    tree = [pid]
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, p in parents.items() if p == parent]
        tree.extend(children)
        frontier.extend(children)
    return tree


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of one process in KiB; (0, 0) if it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def pss_kb(pid: int) -> int:
    """Proportional set size of one process in KiB (shared pages divided among their users)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_kb(pids: list[int]) -> int:
    """Sum of PSS: the honest total of a process tree, where the RSS sum counts shared pages twice."""
    return sum(pss_kb(pid) for pid in pids)


def tree_memory_kb(pids: list[int]) -> tuple[int, int]:
    """Sum of (VmRSS, VmHWM) over processes. The VmHWM sum is an upper bound of the peak sum."""
    rss = hwm = 0
    for pid in pids:
        r, h = memory_kb(pid)
        rss += r
        hwm += h
    return rss, hwm


def stop_groups(procs: Sequence[subprocess.Popen[bytes]], sig: int, grace_s: float) -> None:
    """Signal each child's process group (newest first), give them ``grace_s`` in all, then SIGKILL.

    The children were started with ``start_new_session=True``, so a group is a child with its
    workers (Sanic's main process, its manager, its worker processes).
    """
    for proc in reversed(procs):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace_s
    for proc in reversed(procs):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
