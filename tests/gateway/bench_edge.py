"""What the request path's reading and checking costs per request, in microseconds (a script, not a test).

    python tests/gateway/bench_edge.py                  # this checkout
    python tests/gateway/bench_edge.py --root DIR       # another checkout (a before/after pair)

Measures, each as the best of several rounds of many calls:
- ``parse_body`` on each captured Claude Code request (~28-55 KB, the model first) and on an SDK
  body (the model last), beside ``orjson.loads`` of the same bytes for scale;
- the edge checks of one request (a well-formed head, the Host, the Origin, the content type),
  when the checkout has them (``gateway.server.edge``);
- the headers sent upstream and back for the captured Claude Code headers;
- the SSE observer over a 200-event stream, and over 12 and 48 MB with no blank line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve()


def per_call_us(fn: Callable[[], object], number: int, repeat: int = 7) -> float:
    """Best of ``repeat`` rounds of ``number`` calls, in microseconds per call."""
    return min(timeit.Timer(fn).repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=HERE.parents[2], help="the checkout to measure")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parents[1]))  # the captured requests of this checkout
    sys.path.insert(0, str(args.root.resolve()))

    import orjson

    from gateway.upstream.credentials import Credential
    from gateway.wire.body import parse_body
    from gateway.wire.headers import downstream_headers, upstream_headers
    from gateway.wire.sse import StreamObserver
    from policy.captured import MESSAGE_REQUESTS, client_headers, inflated_bytes
    from rules.model import KeySource, Provider

    print(f"checkout: {args.root.resolve()}")
    for name in MESSAGE_REQUESTS:
        raw = inflated_bytes(name)
        assert parse_body(raw)._doc is None, f"{name} left the fast path"
        fast = per_call_us(lambda raw=raw: parse_body(raw), 2000)
        parse = per_call_us(lambda raw=raw: orjson.loads(raw), 200)
        print(f"parse_body {name:40} {len(raw) // 1024:3d} KB  {fast:7.2f} us   (orjson.loads {parse:6.1f} us)")
    sdk = orjson.dumps({"max_tokens": 1024, "messages": [{"role": "user", "content": "Hello"}], "model": "claude-sonnet-5-5"})
    print(f"parse_body SDK body, model last                 {per_call_us(lambda: parse_body(sdk), 20000):7.2f} us")

    headers = client_headers("cc_print_haiku_stream.json")
    captured = list({**headers, "host": "127.0.0.1:8082", "connection": "keep-alive"}.items())
    head = ("POST /v1/messages?beta=true HTTP/1.1\r\n" + "\r\n".join(f"{k}: {v}" for k, v in captured)).encode()
    try:
        from gateway.server.edge import Edge
    except ImportError:
        print("edge checks: none in this checkout")
    else:
        from sanic.compat import Header

        from gateway.reload.live import LiveConfig
        from rules.loader import load_bytes

        config = b'version = 1\n[providers.a]\nbase_url = "http://127.0.0.1:9"\nkey = { client = true }\n' \
                 b'[[route]]\nname = "all"\nmatch = "*"\nto = "a"\n'
        edge = Edge(LiveConfig(load_bytes(config, file="b.toml", env={}), "b"), "127.0.0.1")
        lowered = Header([(k.lower(), v) for k, v in captured])  # as Sanic hands them over
        assert edge.refusal(head, lowered, "POST", "/v1/messages") is None
        print(f"edge checks, Claude Code's head ({len(head)} bytes)   "
              f"{per_call_us(lambda: edge.refusal(head, lowered, 'POST', '/v1/messages'), 20000):7.2f} us")

    provider = Provider("anthropic", "http://x", (KeySource("env", "K"),))
    credential = Credential((("x-api-key", "k" * 40),), KeySource("env", "K"), False)
    print(f"upstream_headers, Claude Code's headers         "
          f"{per_call_us(lambda: upstream_headers(captured, provider, credential), 20000):7.2f} us")
    answer = [("content-type", "text/event-stream"), ("request-id", "req_1"), ("connection", "keep-alive"),
              ("anthropic-ratelimit-requests-remaining", "99"), ("date", "x"), ("server", "y")]
    print(f"downstream_headers, an answer's headers         "
          f"{per_call_us(lambda: downstream_headers(answer), 20000):7.2f} us")

    delta = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello there"}}\n\n'
    events = [delta] * 200

    def stream() -> None:
        observer = StreamObserver()
        for chunk in events:
            observer.feed(chunk)

    print(f"SSE observer, 200 text deltas (per stream)      {per_call_us(stream, 200):7.1f} us")
    chunk = b"data: " + b"x" * (64 * 1024)
    for size in (12, 48):
        observer = StreamObserver()
        started = time.perf_counter()
        for _ in range(size * 16):
            observer.feed(chunk)
        print(f"SSE observer, {size} MB with no blank line         {time.perf_counter() - started:7.3f} s")
    print(json.dumps({"python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
