"""The soak's clients: which behaviours they ask for, what each must see, and the request loop.

Each behaviour (a ``Kind``) names a route of the soak's routes.toml (the model name picks it)
and a fault for the upstream's first target (``fault=`` in the query string, which the gateway
keeps). A client picks a fault with probability ``fault_rate``, else a normal stream, sends it,
reads the SSE to the end and keeps an ``Outcome``; ``Outcome.problem`` says whether it is what
the kind must produce.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass

import aiohttp
import orjson
from _common import body_bytes, request_headers

ROUTES_TOML = """\
version = 1

[server]
ledger = "ledger.db"  # on, as by default, but in the soak's temporary directory

[defaults]
timeout_s = {timeout}
connect_timeout_s = {timeout}
fallback_on = [429, 500, 502, 503, 504, 529]

# Three names for one fake server: cooldowns and circuits are per provider, so the faults of
# one route never send another route's requests to its fallback.
[providers.primary]
base_url = "http://127.0.0.1:{port}/primary"
key = {{ env = "SOAK_KEY" }}

[providers.limited]
base_url = "http://127.0.0.1:{port}/limited"
key = {{ env = "SOAK_KEY" }}

[providers.last]
base_url = "http://127.0.0.1:{port}/last"
key = {{ env = "SOAK_KEY" }}

[providers.refused]
base_url = "http://127.0.0.1:{closed}"
key = {{ env = "SOAK_KEY" }}

# The fallback target: a longer timeout, so only first targets time out.
[providers.secondary]
base_url = "http://127.0.0.1:{port}/secondary"
key = {{ env = "SOAK_KEY" }}
timeout_s = {fallback_timeout}

[[route]]
name = "main"
match = "soak-main"
to = [{{ provider = "primary" }}, {{ provider = "secondary" }}]

[[route]]
name = "limited"
match = "soak-limited"
to = [{{ provider = "limited" }}, {{ provider = "secondary" }}]

[[route]]
name = "refused"
match = "soak-refused"
to = [{{ provider = "refused" }}, {{ provider = "secondary" }}]

[[route]]
name = "last"
match = "soak-last"
to = [{{ provider = "last" }}]
"""


@dataclass(frozen=True)
class Kind:
    """One behaviour a client asks for, and what it must see.

    ``expect``: "stop" (message_stop, served by ``role``), "error_event" (an SSE error event
    whose message contains ``says``), "http" (that ``status``), "abort" (the client leaves).
    ``fault``: what the upstream's first target is told to do.
    """

    route: str
    fault: str
    expect: str
    role: str = ""
    status: int = 0
    says: str = ""
    retry_after: bool = False
    fallback: bool = False  # the fault must be absorbed by the second target
    abort_after_s: float = 0.0  # "abort" before the head: the client gives up after this long


KINDS: dict[str, Kind] = {
    "ok": Kind("main", "none", "stop", role="primary"),
    "slow": Kind("main", "slow", "stop", role="primary"),
    "refused": Kind("refused", "none", "stop", role="secondary", fallback=True),
    "429_fallback": Kind("limited", "429", "stop", role="secondary", fallback=True),
    "529_fallback": Kind("limited", "529", "stop", role="secondary", fallback=True),
    "500_fallback": Kind("main", "500", "stop", role="secondary", fallback=True),
    "hang_fallback": Kind("main", "hang", "stop", role="secondary", fallback=True),
    "429_last": Kind("last", "429", "http", status=429, retry_after=True),
    "529_last": Kind("last", "529", "http", status=529, retry_after=True),
    "500_last": Kind("last", "500", "http", status=500),
    "hang_last": Kind("last", "hang", "http", status=504),
    "drop": Kind("main", "drop", "error_event", says="broke off the stream"),
    "silent": Kind("main", "silent", "error_event", says="broke off the stream"),
    "truncated": Kind("main", "truncated", "error_event", says="ended before message_stop"),
    "error_event": Kind("main", "error_event", "error_event", says="Overloaded"),
    "client_abort": Kind("main", "none", "abort", role="primary"),
    # The client gives up while the gateway still waits for the head (issue 6, item 4).
    "abort_waiting": Kind("main", "hang", "abort", role="primary", abort_after_s=0.5),
}
FAULT_KINDS = [k for k in KINDS if k != "ok"]
ROUTE_MODELS = {"main": "soak-main", "limited": "soak-limited", "refused": "soak-refused", "last": "soak-last"}


@dataclass(frozen=True)
class Shape:
    """The stream shapes of a run, in the query string of each request."""

    deltas: int
    delay_ms: float
    slow_deltas: int
    slow_delay_ms: float
    retry_after: int

    def query(self, soak_id: int, kind: Kind, k: int) -> str:
        deltas, delay = (self.slow_deltas, self.slow_delay_ms) if kind.fault == "slow" else (
            self.deltas, self.delay_ms)
        return (f"beta=true&soak={soak_id}&fault={kind.fault}&deltas={deltas}&delay_ms={delay:g}"
                f"&k={k}&ra={self.retry_after}")


@dataclass(slots=True)
class Outcome:
    """What one request looked like to its client."""

    soak_id: int
    kind: str
    k: int
    started: float
    result: str = ""  # stop, error_event, http, aborted, lost, hung, exception
    ended: float = 0.0
    status: int = 0
    role: str = ""
    retry_after: str | None = None
    events: int = 0
    error_type: str = ""
    error_message: str = ""
    exception: str = ""
    aborted_at: float | None = None
    head: bool = False  # the response head arrived
    both: bool = False  # message_stop and an error event in one stream

    def problem(self, shape: Shape) -> str | None:
        """Why this outcome is not what its kind must produce; None when it is."""
        kind = KINDS[self.kind]
        if self.result in ("lost", "hung", "exception"):
            return self.describe()
        if self.both:
            return "message_stop and an error event in one stream"
        if kind.expect == "abort":
            return None if self.result == "aborted" else f"expected to abort, got {self.describe()}"
        if kind.expect == "stop":
            if self.result != "stop":
                return f"expected message_stop, got {self.describe()}"
            if self.role != kind.role:
                return f"expected the {kind.role} target, got {self.role or 'no x-soak-role'}"
            want = (shape.slow_deltas if kind.fault == "slow" else shape.deltas) + 5
            if self.events != want:
                return f"{self.events} events instead of {want}"
            return None
        if kind.expect == "error_event":
            if self.result != "error_event" or kind.says not in self.error_message:
                return f"expected an error event saying {kind.says!r}, got {self.describe()}"
            return None
        if self.result != "http" or self.status != kind.status:
            return f"expected HTTP {kind.status}, got {self.describe()}"
        if kind.retry_after and not self.retry_after:
            return f"HTTP {self.status} without retry-after"
        return None

    def describe(self) -> str:
        if self.result == "http":
            return f"HTTP {self.status} {self.error_type}: {self.error_message[:160]}"
        if self.result == "error_event":
            return f"error event {self.error_type}: {self.error_message[:160]}"
        where = f"after {self.events} events" if self.head else "before the response head"
        if self.exception:
            return f"{self.result} {where} ({self.exception[:160]})"
        return f"{self.result} {where}"


def _error_of(data: bytes) -> tuple[str, str]:
    """(error.type, error.message) of an Anthropic error document; ("", raw) if it is not one."""
    try:
        doc = orjson.loads(data)
        error = doc["error"]
        return str(error.get("type", "")), str(error.get("message", ""))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return "", data[:200].decode("utf-8", "replace")


class Clients:
    """N concurrent clients, each looping request after request until the stop time."""

    def __init__(self, url: str, shape: Shape, fault_rate: float, seed: str, deadline_s: float,
                 body_kind: str, first_id: int = 1) -> None:
        self.url = url.rstrip("/") + "/v1/messages"
        self.shape = shape
        self.fault_rate = fault_rate
        self.seed = seed
        self.deadline_s = deadline_s
        self.headers = request_headers(body_kind)
        # One body per route, serialised once: the model name picks the route.
        template = orjson.loads(body_bytes(body_kind, True))
        self.bodies = {route: orjson.dumps({**template, "model": model}) for route, model in ROUTE_MODELS.items()}
        self.outcomes: list[Outcome] = []
        self.in_flight = 0
        self._ids = itertools.count(first_id)

    def pick(self, rng: random.Random) -> tuple[str, int]:
        kind = rng.choice(FAULT_KINDS) if rng.random() < self.fault_rate else "ok"
        # Events before a mid-stream fault: anywhere from message_start on. A client leaves
        # with at least five events to go, so that it leaves an unfinished stream even when a
        # busy loop hands it the next few events in one read.
        last = self.shape.deltas + 2 if KINDS[kind].expect != "abort" else max(1, self.shape.deltas - 2)
        return kind, rng.randint(1, last)

    async def run(self, streams: int, seconds: float, ramp_s: float) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                         cookie_jar=aiohttp.DummyCookieJar()) as session:
            stop_at = time.monotonic() + seconds
            await asyncio.gather(*(self._client(session, i, i * ramp_s / streams, stop_at)
                                   for i in range(streams)))

    async def _client(self, session: aiohttp.ClientSession, index: int, delay: float, stop_at: float) -> None:
        await asyncio.sleep(delay)
        rng = random.Random(f"{self.seed}:{index}")
        while time.monotonic() < stop_at:
            kind, k = self.pick(rng)
            self.in_flight += 1
            try:
                self.outcomes.append(await self.one(session, next(self._ids), kind, k))
            finally:
                self.in_flight -= 1

    async def one(self, session: aiohttp.ClientSession, soak_id: int, kind_name: str, k: int) -> Outcome:
        """One request, read to its end (or abandoned after k events for client_abort)."""
        kind = KINDS[kind_name]
        out = Outcome(soak_id, kind_name, k, time.monotonic())
        url = f"{self.url}?{self.shape.query(soak_id, kind, k)}"
        if kind.abort_after_s:
            return await self._abort_waiting(session, out, url, kind)
        saw_stop = saw_error = False
        try:
            async with asyncio.timeout(self.deadline_s):
                async with session.post(url, data=self.bodies[kind.route], headers=self.headers) as resp:
                    out.head = True
                    out.status = resp.status
                    out.role = resp.headers.get("x-soak-role", "")
                    out.retry_after = resp.headers.get("retry-after")
                    if resp.status != 200 or not resp.headers.get("content-type", "").startswith(
                            "text/event-stream"):
                        out.error_type, out.error_message = _error_of(await resp.read())
                        out.result = "http"
                        return out
                    buffer = b""
                    async for chunk in resp.content.iter_any():
                        buffer += chunk
                        while (end := buffer.find(b"\n\n")) >= 0:
                            event, buffer = buffer[:end], buffer[end + 2:]
                            out.events += 1
                            name, _, rest = event.partition(b"\n")
                            if name == b"event: message_stop":
                                saw_stop = True
                            elif name == b"event: error":
                                saw_error = True
                                out.error_type, out.error_message = _error_of(rest.partition(b"data: ")[2])
                        if kind.expect == "abort" and out.events >= k and not saw_stop:
                            out.aborted_at = time.monotonic()
                            resp.close()  # closes the connection: the gateway must close its upstream
                            out.result = "aborted"
                            return out
        except TimeoutError:
            out.result = "hung"
            out.exception = f"still open after the {self.deadline_s:g} s deadline"
        except (aiohttp.ClientError, OSError) as exc:
            out.exception = f"{type(exc).__name__}: {exc}"
            out.result = "exception" if not out.head else ""
        finally:
            out.ended = time.monotonic()
        if not out.result:
            out.both = saw_stop and saw_error
            out.result = "stop" if saw_stop else "error_event" if saw_error else "lost"
        return out

    async def _abort_waiting(self, session: aiohttp.ClientSession, out: Outcome, url: str, kind: Kind) -> Outcome:
        """Send, then give up before any answer: cancelling the request closes its connection."""
        try:
            async with asyncio.timeout(kind.abort_after_s):
                async with session.post(url, data=self.bodies[kind.route], headers=self.headers) as resp:
                    out.status = resp.status
                    out.error_type, out.error_message = _error_of(await resp.read())
                    out.result = "http"  # the gateway answered before the client gave up: unexpected
        except TimeoutError:
            out.aborted_at = time.monotonic()
            out.result = "aborted"
        except (aiohttp.ClientError, OSError) as exc:
            out.exception = f"{type(exc).__name__}: {exc}"
            out.result = "exception"
        out.ended = time.monotonic()
        return out
