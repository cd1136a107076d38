"""What naming the provider costs per request, in microseconds (a script, not a test).

    python benchmarks/ux_bench.py

Measures, each as the fastest of several rounds of many calls:
- ``add_provenance``: the x-gateway-route/-provider/-model headers added to an answer's headers
  (on every answer: whole, streamed, error);
- the session id read from the request's headers (Sanic's ``Header``, Claude Code's headers);
- ``SessionMemory.observe``: remembering a session's last request (after the answer is written,
  in the exchange listeners), at capacity so every call also evicts;
- for scale: ``downstream_headers`` on the same upstream answer, which every answer pays anyway.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sanic.compat import Header  # noqa: E402

from gateway.ops.sessions import SESSION_HEADER, SessionMemory  # noqa: E402
from gateway.proxy.exchange import Attempt, Exchange  # noqa: E402
from gateway.proxy.relay import add_provenance  # noqa: E402
from gateway.wire.headers import downstream_headers  # noqa: E402

# An upstream answer's headers, as Anthropic sends them (the rate-limit set included).
UPSTREAM = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("request-id", "req_011CXYZabcdefghijklmnop"),
    ("anthropic-organization-id", "2c5f0c1e-0000-4000-8000-000000000000"),
    ("anthropic-ratelimit-unified-status", "allowed"),
    ("anthropic-ratelimit-unified-5h-utilization", "0.42"),
    ("anthropic-ratelimit-unified-5h-reset", "1767621600"),
    ("anthropic-ratelimit-unified-7d-utilization", "0.61"),
    ("anthropic-ratelimit-unified-7d-reset", "1768000000"),
    ("cache-control", "no-cache"),
    ("x-robots-tag", "none"),
    ("via", "1.1 google"),
    ("cf-cache-status", "DYNAMIC"),
    ("server", "cloudflare"),
    ("date", "Mon, 05 Jan 2026 09:12:44 GMT"),
]

# What Claude Code sends (its header names, values of the usual lengths).
CLIENT = Header([
    ("host", "127.0.0.1:8082"), ("accept", "application/json"), ("anthropic-beta", "claude-code-20250219,oauth-2025-04-20"),
    ("anthropic-version", "2023-06-01"), ("content-type", "application/json"), ("user-agent", "claude-cli/2.1.332"),
    ("x-app", "cli"), (SESSION_HEADER, str(uuid.uuid4())), ("x-stainless-lang", "js"), ("x-stainless-retry-count", "0"),
    ("x-api-key", "sk-ant-api03-" + "x" * 80), ("content-length", "17408"),
])


def per_call(fn: Callable[[], object], calls: int = 50000, rounds: int = 9) -> float:
    """Microseconds per call: the fastest of several rounds (the least disturbed by other load)."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return min(samples)


def main() -> None:
    attempt = Attempt("zai", "glm-4.7", "ok", 200)
    built = downstream_headers(UPSTREAM)
    copy = per_call(built.copy)
    added = per_call(lambda: add_provenance(built.copy(), "haiku", attempt)) - copy
    print(f"downstream_headers (every answer, for scale)   {per_call(lambda: downstream_headers(UPSTREAM)):6.2f} us")
    print(f"add_provenance (route, provider, model)        {added:6.2f} us")
    print(f"session id from Sanic's request headers        {per_call(lambda: CLIENT.get(SESSION_HEADER)):6.2f} us")

    memory = SessionMemory()
    sessions = [str(uuid.uuid4()) for _ in range(memory.capacity * 2)]
    exchanges = []
    for session in sessions:
        exchange = Exchange("0123456789abcdef", "messages", session=session, model="claude-haiku-5-5", route="haiku")
        exchange.attempts = [attempt]
        exchange.status = 200
        exchanges.append(exchange)
    for exchange in exchanges[: memory.capacity]:
        memory.observe(exchange)  # full: from here on every new session evicts the oldest
    index = 0

    def observe() -> None:
        nonlocal index
        memory.observe(exchanges[index % len(exchanges)])
        index += 1

    print(f"SessionMemory.observe (full, evicting)         {per_call(observe):6.2f} us  "
          f"(after the answer is written)")
    again = exchanges[0]
    print(f"SessionMemory.observe (a known session again)  {per_call(lambda: memory.observe(again)):6.2f} us")
    print(f"sessions remembered: {len(memory)} of {memory.capacity}")


if __name__ == "__main__":
    main()
