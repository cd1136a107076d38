"""Figures for live reload: how soon an edit serves, and what a 1,000-route file costs.

    python benchmarks/reload_bench.py [--runs 20] [--routes 1000]

1. Apply latency: a real `gateway serve` (watching) in front of two tiny upstreams, `a` and
   `b`, that say their name. Each run rewrites routes.toml (alternately by rename, as editors
   save, and in place) to send haiku to the other upstream, then asks for haiku back to back
   on one keep-alive connection; the figure is the time from the write to the first answer
   from the new upstream. The watcher's debounce (50 ms of quiet ends a burst) is included:
   this is what a user sees.
2. A 1,000-route file: `load_bytes` in-process (what a reload computes, median of rounds),
   then the same apply latency with the big file in the real gateway, and the slowest
   request answered while the big file was being reloaded (the load runs off the event loop).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import free_port, wait_ready  # noqa: E402
from rules.loader import load_bytes  # noqa: E402

GATEWAY = Path(sys.executable).with_name("gateway")
BODY = json.dumps({"model": "claude-haiku-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "bench"}


# --- two upstreams that say who they are -----------------------------------------------------------


def start_upstream(name: str) -> tuple[ThreadingHTTPServer, str]:
    answer = json.dumps({
        "id": "msg_bench", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "text", "text": name}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # head and body are two writes: no 40 ms delayed-ACK stall

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# --- configs ------------------------------------------------------------------------------------------


def config(urls: dict[str, str], haiku: str, filler: int = 0) -> str:
    """Providers a and b; `filler` routes that never match come before haiku and the catch-all."""
    lines = ["version = 1", ""]
    for name, url in urls.items():
        lines += [f"[providers.{name}]", f'base_url = "{url}"', "key = { client = true }", ""]
    for i in range(filler):
        provider = "a" if i % 2 else "b"
        lines += ["[[route]]", f'name = "r{i}"', f'match = ["family-{i}-*", "exact-{i}", "vendor-{i}-v[0-9]"]',
                  f'to = [{{ provider = "{provider}", model = "model-{i}" }}]', ""]
    lines += ["[[route]]", 'name = "haiku"', 'match = "*haiku*"', f'to = "{haiku}"', "",
              "[[route]]", 'name = "default"', 'match = "*"', 'to = [{ provider = "b" }, { provider = "a" }]', ""]
    return "\n".join(lines)


def write(path: Path, text: str, by_rename: bool) -> None:
    if by_rename:
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(text)
        os.replace(temporary, path)
    else:
        with open(path, "w") as f:
            f.write(text)


# --- measuring ----------------------------------------------------------------------------------------


def ask(conn: http.client.HTTPConnection) -> tuple[str, float]:
    """(the upstream that answered, seconds the request took)."""
    start = time.perf_counter()
    conn.request("POST", "/v1/messages", body=BODY, headers=HEADERS)
    response = conn.getresponse()
    payload = response.read()
    took = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"gateway answered {response.status}: {payload[:300]!r}")
    return json.loads(payload)["content"][0]["text"], took


def apply_latency(conn: http.client.HTTPConnection, path: Path, text: str, expect: str,
                  by_rename: bool, timeout: float = 10.0) -> tuple[float, float]:
    """(seconds from the write to the first answer from `expect`, slowest request meanwhile)."""
    write(path, text, by_rename)
    written = time.perf_counter()
    slowest = 0.0
    while True:
        name, took = ask(conn)
        slowest = max(slowest, took)
        if name == expect:
            return time.perf_counter() - written, slowest
        if time.perf_counter() - written > timeout:
            raise RuntimeError(f"the edit did not apply within {timeout} s")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return (f"median {ms(statistics.median(ordered))}, p90 {ms(p90)}, min {ms(ordered[0])}, "
            f"max {ms(ordered[-1])} (n={len(ordered)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="edits per measurement (default 20)")
    parser.add_argument("--routes", type=int, default=1000, help="routes in the big file (default 1000)")
    args = parser.parse_args()

    servers = {name: start_upstream(name) for name in ("a", "b")}
    urls = {name: url for name, (_, url) in servers.items()}
    big = config(urls, "b", filler=args.routes - 2)
    assert big.count("[[route]]") == args.routes

    # What one reload of the big file computes (bytes -> RuleSet), in this process.
    data = big.encode()
    load_bytes(data, file="routes.toml")  # schema compiled once per process, as in a worker
    rounds, cpu = [], []
    for _ in range(max(5, args.runs // 2)):
        start, start_cpu = time.perf_counter(), time.process_time()
        load_bytes(data, file="routes.toml")
        rounds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)

    with tempfile.TemporaryDirectory(prefix="reload-bench-") as tmp:
        path = Path(tmp) / "routes.toml"
        path.write_text(config(urls, "a"))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "ANTHROPIC_"))}
        proc = subprocess.Popen(
            [str(GATEWAY), "serve", "--config", str(path), "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            wait_ready(proc, port)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            serving = ask(conn)[0]
            assert serving == "a"
            small: dict[str, list[float]] = {"rename": [], "in place": []}
            for run in range(args.runs):
                serving = "b" if serving == "a" else "a"  # every edit moves haiku
                mode = "rename" if run % 4 < 2 else "in place"
                took, _ = apply_latency(conn, path, config(urls, serving), serving, mode == "rename")
                small[mode].append(took)

            bigs, slowest, baseline = [], [], []
            for run in range(2 * max(3, args.runs // 4)):
                # The big file and a small one in turn, each write moving haiku: a full reload each.
                serving = "b" if serving == "a" else "a"
                big_turn = run % 2 == 0
                text = config(urls, serving, filler=args.routes - 2) if big_turn else config(urls, serving)
                took, worst = apply_latency(conn, path, text, serving, by_rename=True)
                if big_turn:
                    bigs.append(took)
                    slowest.append(worst)
            for _ in range(200):
                baseline.append(ask(conn)[1])
            conn.close()
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        errors = (proc.stderr.read().decode(errors="replace") if proc.stderr else "").strip()
    for server, _ in servers.values():
        server.shutdown()

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print("apply latency, write -> first request answered on the new rules (debounce included):")
    for mode, values in small.items():
        print(f"  small file, {mode:8s}: {summary(values)}")
    print(f"  {args.routes}-route file:    {summary(bigs)}")
    print(f"load_bytes of a {args.routes}-route file ({len(data) // 1024} KiB): {summary(rounds)}; "
          f"CPU median {ms(statistics.median(cpu))}")
    print(f"requests while the {args.routes}-route file reloads: slowest {ms(max(slowest))}"
          f" (idle request median {ms(statistics.median(baseline))})")
    if errors:
        print(f"gateway stderr:\n{errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
