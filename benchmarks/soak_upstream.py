"""A fault-injecting fake Anthropic upstream for the soak run: raw asyncio + httptools, on uvloop.

    python benchmarks/soak_upstream.py --port 9200

One listener plays several providers, told apart by the first path segment of the request
(the provider's ``base_url`` in routes.toml): ``/primary/v1/messages``, ``/limited/...``,
``/last/...`` and ``/secondary/...``. Every answer carries ``x-soak-role: <role>``, so the client
sees which target served it (the gateway passes unknown response headers through).

The soak client says what to do in the query string, which the gateway keeps:
``?soak=ID&fault=KIND&deltas=N&delay_ms=D&k=E&ra=S``. The fault is applied only by the first
targets (every role but ``secondary``), so a fallback target always answers normally. Faults:

- ``429`` / ``529``: an Anthropic error with ``retry-after: S`` (before the head: fallback or,
  on the route's last target, passed to the client); ``500``: api_error, no retry-after;
- ``hang``: reads the request and never answers (only the gateway's timeout ends it);
- ``drop``: head and E events, then the connection is closed mid-body;
- ``silent``: head and E events, then nothing, until the gateway closes the connection;
- ``truncated``: the whole body but without message_delta and message_stop, ended cleanly;
- ``error_event``: head, E events, then the upstream's own SSE ``error`` event
  (overloaded_error, as Anthropic sends mid-stream) and a clean end;
- anything else (``none``, ``slow``, ``abort``): a normal stream of N deltas D ms apart.

Each request is recorded (id, role, fault applied, when it started, when the peer closed the
connection if it did so before the answer was done); ``GET /records`` returns them and
``GET /stats`` the counters, including connections open now and at most. A held response
(hang, silent) that nobody closes is cut after ``--max-hold`` seconds and counted: that is the
gateway failing to apply its timeout.

Why not the test fakes (tests/fakes): they run in a thread of the test process, on one loop
with aiohttp.web; here the upstream shares two cores with 1,000 streams and should cost as
little as benchmarks/fake_upstream.py, whose event encoding it reuses.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import parse_qs

import httptools
import orjson
import uvloop
from fake_upstream import stream_events

ROLES = ("primary", "limited", "last", "secondary")
FALLBACK_ROLE = "secondary"  # never injects: the target that absorbs the first target's fault
_ERROR_TYPES = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            529: "Overloaded"}


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


_END = b"0\r\n\r\n"
_ERROR_EVENT = _chunk(
    b"event: error\ndata: "
    + orjson.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    + b"\n\n"
)


def _head(status: int, role: str, extra: bytes = b"", *, stream: bool) -> bytes:
    head = b"HTTP/1.1 %d %s\r\nx-soak-role: %s\r\nrequest-id: req_soak\r\n" % (
        status, _REASONS.get(status, "Error").encode(), role.encode(),
    )
    if stream:
        head += b"content-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
        head += b"transfer-encoding: chunked\r\n"
    return head + extra


def _whole(status: int, role: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        _head(status, role, extra, stream=False)
        + b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
        + body
    )


def _error(status: int, role: str, retry_after: str | None) -> bytes:
    body = orjson.dumps(
        {
            "type": "error",
            "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": f"soak: injected {status}"},
            "request_id": "req_soak",
        }
    )
    extra = b"retry-after: %s\r\n" % retry_after.encode() if retry_after else b""
    return _whole(status, role, body, extra)


@dataclass(slots=True)
class Record:
    """One request as this upstream saw it; times are time.monotonic() (one clock for all processes)."""

    soak_id: int
    role: str
    fault: str  # what was applied: the planned fault, or "none" (the fallback role never injects)
    started: float
    events_sent: int = 0
    last_write: float | None = None  # when the last byte went out (a silent answer's silence starts here)
    done: float | None = None  # the answer was complete, or the fault ended it on our side
    peer_closed: float | None = None  # the gateway closed the connection before we were done
    cut_by_us: bool = False  # a held response nobody closed, cut after --max-hold

    def as_list(self) -> list[object]:
        return [self.soak_id, self.role, self.fault, self.started, self.events_sent,
                self.last_write, self.done, self.peer_closed, self.cut_by_us]


RECORD_FIELDS = ["soak_id", "role", "fault", "started", "events_sent", "last_write", "done",
                 "peer_closed", "cut_by_us"]


@dataclass
class Stats:
    """Counters shared by all connections."""

    connections_open: int = 0
    connections_max: int = 0
    connections_total: int = 0
    held_now: int = 0  # hang/silent responses still waiting for the gateway to close them
    held_cut: int = 0  # ... that we cut after --max-hold: the gateway never did
    records: list[Record] = field(default_factory=list)

    def as_json(self) -> bytes:
        return orjson.dumps(
            {
                "connections_open": self.connections_open,
                "connections_max": self.connections_max,
                "connections_total": self.connections_total,
                "held_now": self.held_now,
                "held_cut": self.held_cut,
                "requests": len(self.records),
            }
        )


class SoakProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection; one response at a time (later ones wait)."""

    def __init__(self, stats: Stats, max_hold_s: float) -> None:
        self._stats = stats
        self._max_hold_s = max_hold_s
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._task: asyncio.Task[None] | None = None
        self._record: Record | None = None
        self._pending: list[tuple[bytes, bytes]] = []
        self._lost: asyncio.Future[None] | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance check here.
        self._transport = cast(asyncio.Transport, transport)
        self._lost = asyncio.get_running_loop().create_future()
        stats = self._stats
        stats.connections_open += 1
        stats.connections_total += 1
        stats.connections_max = max(stats.connections_max, stats.connections_open)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stats.connections_open -= 1
        self._pending.clear()
        self._transport = None
        record = self._record
        if record is not None and record.done is None:
            record.peer_closed = time.monotonic()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        # A running response notices at its next write or wakes from its hold on _lost.

    def eof_received(self) -> bool:
        return False  # the gateway closed its end: close ours (connection_lost follows)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._close()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_message_complete(self) -> None:
        request = (self._parser.get_method(), self._url)
        if self._task is not None:
            # A request pipelined behind a running answer waits for it (HTTP/1.1 answers in order).
            self._pending.append(request)
        else:
            self._dispatch(*request)

    def _dispatch(self, method: bytes, url: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        path, _, query = url.partition(b"?")
        role, _, rest = path.lstrip(b"/").partition(b"/")
        if method == b"GET" and path == b"/health":
            transport.write(_whole(200, "-", b'{"status":"ok"}'))
        elif method == b"GET" and path == b"/stats":
            transport.write(_whole(200, "-", self._stats.as_json()))
        elif method == b"GET" and path == b"/records":
            body = orjson.dumps({"fields": RECORD_FIELDS,
                                 "records": [r.as_list() for r in self._stats.records]})
            transport.write(_whole(200, "-", body))
        elif method == b"POST" and rest == b"v1/messages" and role.decode() in ROLES:
            # Reading goes on while we answer (unlike benchmarks/fake_upstream.py, which pauses):
            # a paused transport never sees the gateway's FIN, and a held answer would then
            # never learn that the gateway let go of it.
            self._task = asyncio.get_running_loop().create_task(self._answer(role.decode(), query))
        else:
            transport.write(_whole(404, "-", b'{"type":"error","error":{"type":"not_found_error",'
                                              b'"message":"soak upstream: no such path"}}'))

    # answers

    async def _answer(self, role: str, query: bytes) -> None:
        params = {k: v[0] for k, v in parse_qs(query.decode("latin-1")).items()}
        fault = params.get("fault", "none") if role != FALLBACK_ROLE else "none"
        record = Record(int(params.get("soak", "0")), role, fault, time.monotonic())
        self._stats.records.append(record)
        self._record = record
        deltas = int(params.get("deltas", "10"))
        delay_s = float(params.get("delay_ms", "0")) / 1000.0
        before_fault = int(params.get("k", "3"))
        try:
            await self._respond(record, fault, deltas, delay_s, before_fault, params.get("ra"))
        except ConnectionError:
            pass  # the gateway went away mid-answer: connection_lost noted when
        finally:
            if record.done is None and record.peer_closed is None:
                record.done = time.monotonic()
            self._record = None
            self._task = None
        while self._pending and self._task is None:
            self._dispatch(*self._pending.pop(0))

    async def _respond(
        self, record: Record, fault: str, deltas: int, delay_s: float, before_fault: int, ra: str | None
    ) -> None:
        role = record.role
        if fault in ("429", "529", "500"):
            status = int(fault)
            self._write(_error(status, role, ra if status != 500 else None))
            record.done = time.monotonic()
            return
        if fault == "hang":
            await self._hold(record)
            return
        events = stream_events(deltas)
        if fault == "truncated":
            events = events[:-2]  # no message_delta, no message_stop; the chunked body ends cleanly
        elif fault in ("drop", "silent", "error_event"):
            events = events[: max(1, min(before_fault, len(events) - 1))]
        self._write(_head(200, role, stream=True) + b"\r\n" + events[0])
        record.events_sent = 1
        for event in events[1:]:
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            self._write(event)
            record.events_sent += 1
        record.last_write = time.monotonic()
        if fault == "drop":
            record.done = time.monotonic()
            self._close()  # mid-body: the chunked encoding never reaches its last chunk
            return
        if fault == "silent":
            await self._hold(record)
            return
        if fault == "error_event":
            self._write(_ERROR_EVENT)
        self._write(_END)
        record.done = time.monotonic()

    async def _hold(self, record: Record) -> None:
        """Send nothing more until the gateway closes the connection (or --max-hold passes)."""
        assert self._lost is not None
        stats = self._stats
        stats.held_now += 1
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), self._max_hold_s)
        except asyncio.TimeoutError:
            # The gateway kept a silent upstream open far past any timeout_s: count it, cut it.
            stats.held_cut += 1
            record.cut_by_us = True
            record.done = time.monotonic()
            self._close()
        finally:
            stats.held_now -= 1

    def _write(self, data: bytes) -> None:
        if self._transport is None:
            raise ConnectionResetError("the gateway closed the connection")
        self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def serve(host: str, port: int, max_hold_s: float) -> None:
    """Serve until cancelled."""
    loop = asyncio.get_running_loop()
    stats = Stats()
    # 1,000 streams connect within a second or two: a short accept queue would drop SYNs.
    server = await loop.create_server(
        lambda: SoakProtocol(stats, max_hold_s), host, port, backlog=4096, reuse_address=True
    )
    print(f"soak upstream on http://{host}:{port}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--max-hold", type=float, default=120.0,
                        help="seconds a hang/silent response waits for the gateway to close it")
    args = parser.parse_args(argv)
    try:
        uvloop.run(serve(args.host, args.port, args.max_hold))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
