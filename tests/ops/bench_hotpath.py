"""What the operations features add per request, in microseconds (a script, not a test).

    python tests/ops/bench_hotpath.py            # in-process metrics (one worker)
    python tests/ops/bench_hotpath.py --multi    # multiprocess metrics (--workers N)

Measures, each as the median of several rounds of many calls:
- the client-key check (no keys configured; one key; a refused request's check),
- the Sanic request middleware around it, dispatched as Sanic does (signals included),
- one request-log line, text and JSON, written to a log file,
- Metrics.observe for a fallback exchange with tokens,
- AfterResponse: queuing an exchange and flushing it on the next loop turn;
- quota observation per upstream answer (no quota headers, an API key's, a Claude login's),
  the spill_at check, and routing on Claude Code's hint headers against the model-only path;
- for scale, on the same machine at the same moment: parsing the captured Claude Code request
  body with orjson, which the gateway does for every request anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if "--multi" in sys.argv:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.ops.logs import setup_logging  # noqa: E402
from gateway.ops.metrics import Metrics  # noqa: E402
from gateway.ops.requestlog import AfterResponse, RequestLog  # noqa: E402
from gateway.proxy.exchange import Attempt, Exchange  # noqa: E402
from gateway.reload.live import LiveConfig  # noqa: E402
from gateway.server.access import AccessControl  # noqa: E402
from rules.loader import load_bytes  # noqa: E402

CONFIG = """version = 1
{server}
[providers.a]
base_url = "http://127.0.0.1:9"
key = {{ client = true }}

[[route]]
name = "all"
match = "*"
to = "a"
"""


def per_call(fn: Callable[[], object], calls: int = 20000, rounds: int = 7) -> float:
    """Median microseconds per call."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(samples)


def exchange() -> Exchange:
    ex = Exchange("0123456789abcdef", "messages", client="192.168.1.20", model="claude-haiku-5-5", route="haiku")
    ex.attempts = [Attempt("zai", "glm-4.7", "status", 429), Attempt("anthropic", "claude-haiku-5-5", "ok", 200)]
    ex.status, ex.stream, ex.input_tokens, ex.output_tokens = 200, True, 1200, 87
    ex.ttfb, ex.finished = 0.41, ex.started + 2.2
    return ex


FIXTURE = Path(__file__).resolve().parents[1] / "fakes" / "captured" / "cc_print_haiku_stream.json"


def main() -> None:
    if FIXTURE.exists():
        import json

        import orjson

        body = orjson.dumps(json.loads(FIXTURE.read_text())["body"])
        print(f"reference: orjson.loads of a {len(body) // 1024} KB Claude Code body "
              f"{per_call(lambda: orjson.loads(body), calls=2000):6.2f} us")
    env = {"GATEWAY_CLIENT_KEY": "gw-client-key-4b1d2c3e4f5a6b7c"}
    open_rules = load_bytes(CONFIG.format(server="").encode(), file="b.toml", env=env)
    keyed_rules = load_bytes(
        CONFIG.format(server='[server]\nclient_keys = [{ env = "GATEWAY_CLIENT_KEY" }]\n').encode(), file="b.toml", env=env
    )
    open_gate = AccessControl(LiveConfig(open_rules, "b"), env, loopback=True)
    keyed_gate = AccessControl(LiveConfig(keyed_rules, "b"), env, loopback=False)
    good = {"x-gateway-key": env["GATEWAY_CLIENT_KEY"], "content-type": "application/json"}
    bad = {"x-gateway-key": "gw-client-key-4b1d2c3e4f5a6b7X"}
    print(f"client keys: none configured      {per_call(lambda: open_gate.allows(good)):6.2f} us")
    print(f"client keys: one key, valid       {per_call(lambda: keyed_gate.allows(good)):6.2f} us")
    print(f"client keys: one key, wrong       {per_call(lambda: keyed_gate.allows(bad)):6.2f} us")

    print(f"sanic middleware (dispatch+check) {sanic_middleware():6.2f} us")

    with tempfile.TemporaryDirectory() as directory:
        for fmt in ("text", "json"):
            setup_logging("info", fmt, str(Path(directory) / f"{fmt}.log"))
            log = RequestLog(fmt)
            ex = exchange()
            print(f"request log line, {fmt:4} to a file  {per_call(lambda log=log, ex=ex: log(ex), calls=5000):6.2f} us")
        logging.getLogger().handlers.clear()

    metrics = Metrics()
    ex = exchange()
    mode = "multiprocess" if metrics.multiprocess else "in-process"
    print(f"metrics observe ({mode:12})  {per_call(lambda: metrics.observe(ex), calls=5000):6.2f} us")

    async def queued() -> float:
        after = AfterResponse([lambda e: None])
        ex = exchange()
        calls = 20000
        started = time.perf_counter()
        for _ in range(calls):
            after(ex)
            await asyncio.sleep(0)  # the next loop turn runs the flush
        return (time.perf_counter() - started) / calls * 1e6

    async def baseline() -> float:
        calls = 20000
        started = time.perf_counter()
        for _ in range(calls):
            await asyncio.sleep(0)
        return (time.perf_counter() - started) / calls * 1e6

    added = statistics.median(asyncio.run(queued()) - asyncio.run(baseline()) for _ in range(5))
    print(f"after-response queue + flush      {added:6.2f} us")
    quota_and_facts()


# An answer head as the transport hands it over: a Z.AI-like one, and Anthropic's extra headers.
_HEAD = [(b"Content-Type", b"text/event-stream; charset=utf-8"), (b"Date", b"Mon, 05 Jan 2026 09:12:44 GMT"),
         (b"Transfer-Encoding", b"chunked"), (b"Connection", b"keep-alive"), (b"Cache-Control", b"no-cache"),
         (b"request-id", b"req_011CUZ1aBcDeFgHiJkLmNoPq"), (b"Server", b"cloudflare"), (b"X-Robots-Tag", b"none"),
         (b"Via", b"1.1 google"), (b"CF-RAY", b"99a0b1c2d3e4f5a6-FRA")]
_API_KEY = [(f"anthropic-ratelimit-{kind}-{field}".encode(), b"2026-01-05T09:13:44Z" if field == "reset" else b"3999")
            for kind in ("requests", "tokens", "input-tokens", "output-tokens") for field in ("limit", "remaining", "reset")]
_UNIFIED = [(b"anthropic-ratelimit-unified-status", b"allowed"), (b"anthropic-ratelimit-unified-reset", b"1767621600"),
            (b"anthropic-ratelimit-unified-representative-claim", b"five_hour"),
            (b"anthropic-ratelimit-unified-fallback-percentage", b"0.5")] + [
    (f"anthropic-ratelimit-unified-{w}-{f}".encode(), v)
    for w in ("5h", "7d", "7d_oi") for f, v in (("utilization", b"0.42"), ("reset", b"1767621600"), ("status", b"allowed"))]


def quota_and_facts() -> None:
    """Per upstream answer: quota observation; per request: spill_at and routing on hint headers."""
    import httpx
    from sanic.compat import Header

    from gateway.proxy.facts import conditional_route
    from gateway.upstream.credentials import Credential
    from gateway.upstream.quota import QuotaBook
    from gateway.wire.body import RequestBody, parse_body
    from rules.loader import load_file
    from rules.model import KeySource

    book = QuotaBook()
    login = Credential((("authorization", "Bearer sk-ant-oat01-0123456789"),), KeySource("client"), None, "client#0a1b2c")
    heads = {"no quota headers (Z.AI)": _HEAD, "an API key's (12)": _HEAD + _API_KEY,
             "a Claude login's (13)": _HEAD + _UNIFIED}
    for what, head in heads.items():
        headers = httpx.Headers(head)
        print(f"quota observe, {what:23} {per_call(lambda h=headers: book.observe('anthropic', login, h)):6.2f} us")
    book.observe("anthropic", login, httpx.Headers(_HEAD + _UNIFIED))
    spill_at = (("5h", 0.95), ("7d", 0.85))
    book.spill("anthropic", login, spill_at)  # the first read parses; later ones reuse it
    print(f"spill_at check (state kept)       {per_call(lambda: book.spill('anthropic', login, spill_at)):6.2f} us")

    root = Path(__file__).resolve().parents[2]
    captured = root / "tests" / "fakes" / "captured"
    quota_saver = load_file(root / "examples" / "quota-saver.toml", env={"ZAI_API_KEY": "x"})
    mixed = load_file(root / "examples" / "mixed.toml", env={"ZAI_API_KEY": "x"})
    print(f"route, model only (mixed.toml)    {per_call(lambda: mixed.resolve('claude-sonnet-5-5'), calls=100000):6.2f} us")
    without_tools = load_bytes(
        (root / "examples" / "quota-saver.toml").read_bytes().replace(b'when = { server_tools = true }',
                                                                       b'when = { request_class = "workflow" }'),
        file="q.toml", env={"ZAI_API_KEY": "x"})
    import json

    for name in ("cc_hint_headers_main_spawning_agent", "cc_hint_headers_subagent"):
        capture = json.loads((captured / f"{name}.json").read_text())
        headers = Header(capture["headers"])
        raw = json.dumps(capture["body"]).encode()
        label = capture["headers"]["x-claude-code-request-class"]
        body, ex = parse_body(raw), Exchange("id", "messages")
        facts = per_call(lambda h=headers, b=body, e=ex: conditional_route(without_tools, h, b, e), calls=100000)
        # A fresh body per call: the server_tools question parses it (once per request).
        tools = per_call(lambda h=headers, r=raw, e=ex, m=body.model: conditional_route(quota_saver, h, RequestBody(r, m), e),
                         calls=2000)
        print(f"route by hint headers, {label:9}  {facts:6.2f} us (with server_tools, {len(raw) // 1024} KB body: "
              f"{tools:6.2f} us)")


def sanic_middleware() -> float:
    """One Sanic request middleware run as Sanic runs it (signals before and after), minus none."""
    from sanic import Sanic
    from sanic.request import Request

    app = Sanic(f"bench{os.getpid()}", configure_logging=False)
    env = {"GATEWAY_CLIENT_KEY": "k" * 20}
    rules = load_bytes(CONFIG.format(server="").encode(), file="b.toml", env=env)
    gate = AccessControl(LiveConfig(rules, "b"), env, loopback=True)

    @app.get("/")
    async def index(request: Request) -> None:  # pragma: no cover - only registered
        return None

    def middleware(request: object) -> None:
        return None if gate.allows(request.headers) else None

    class FakeRequest:
        headers = {"content-type": "application/json"}
        _request_middleware_started = False

    async def run(collection: tuple[Callable[..., object], ...], calls: int) -> float:
        request = FakeRequest()
        started = time.perf_counter()
        for _ in range(calls):
            await app._run_request_middleware(request, collection)
        return (time.perf_counter() - started) / calls * 1e6

    async def measure() -> float:
        # As at server start: signals finalized, then Sanic's TouchUp rewrites the middleware
        # runner without the dispatch of signals nobody listens to.
        from sanic.touchup import TouchUp

        app.signalize()
        TouchUp.run(app)
        with_one = statistics.median([await run((middleware,), 5000) for _ in range(5)])
        without = statistics.median([await run((), 5000) for _ in range(5)])
        return with_one - without

    return asyncio.run(measure())


if __name__ == "__main__":
    main()
