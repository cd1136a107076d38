"""What the usage ledger costs per request, in microseconds (a script, not a test).

    python benchmarks/ledger_bench.py

On the event loop, after the answer was sent: ``LedgerWriter.__call__``, the exchange listener,
which builds the row (``rows.row``, an Exchange as a tuple) and appends it to a deque, measured
with the writer thread running and writing what it gets.

In the writer thread (off the event loop, but on the same CPU and GIL): ``insert_rows``, one
statement per 256-row transaction. These are measured in CPU time of the
process (``time.process_time``), which other processes on a busy machine do not inflate, so
"1,000 requests/s cost N % of a core" holds on a shared machine too.

For scale: parsing the captured Claude Code request body with orjson, which every request does.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.ops.ledger.rows import row  # noqa: E402
from gateway.ops.ledger.store import connect  # noqa: E402
from gateway.ops.ledger.writer import LedgerWriter, insert_rows  # noqa: E402
from gateway.proxy.exchange import Attempt, Exchange  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fakes" / "captured" / "cc_print_haiku_stream.json"


def exchange() -> Exchange:
    """A typical finished request: a fallback, a stream, tokens, the hint headers."""
    ex = Exchange("0123456789abcdef", "messages", client="127.0.0.1", model="claude-sonnet-5-5", route="default",
                  request_class="subagent", agent_type="general-purpose", session="5f1c0a9e2b7d4c31", stream=True)
    ex.attempts += [Attempt("zai", "glm-4.7", "status", 429), Attempt("anthropic", "claude-sonnet-5-5", "ok", 200)]
    ex.status, ex.ttfb, ex.input_tokens, ex.output_tokens = 200, 0.4, 1200, 87
    ex.cache_read_tokens, ex.cache_creation_tokens = 31000, 900
    ex.finished = ex.started + 2.2
    return ex


def per_call(fn: Callable[[], object], calls: int = 50_000, rounds: int = 7,
             clock: Callable[[], float] = time.perf_counter) -> float:
    """Median microseconds per call over ``rounds`` rounds, by ``clock``."""
    samples = []
    for _ in range(rounds):
        started = clock()
        for _ in range(calls):
            fn()
        samples.append((clock() - started) / calls * 1e6)
    return statistics.median(samples)


def main() -> None:
    ex = exchange()
    with tempfile.TemporaryDirectory() as tmp:
        writer = LedgerWriter(Path(tmp) / "ledger.db", flush_rows=256)
        writer.start()
        # 7 x 5,000 calls: under MAX_QUEUED, so none takes the cheaper "queue full" path.
        listener = per_call(lambda: writer(ex), calls=5_000)
        writer.stop()
        written, dropped = writer.written, writer.dropped

        offset = time.time() - time.perf_counter()
        to_row = per_call(lambda: row(ex, offset), clock=time.process_time)
        conn = connect(Path(tmp) / "bench.db", create=True)
        batch = [row(ex, offset)] * 256

        def write_batch() -> None:
            conn.execute("BEGIN IMMEDIATE")
            insert_rows(conn, batch)
            conn.execute("COMMIT")

        per_batch = per_call(write_batch, calls=100, rounds=7, clock=time.process_time)
        conn.close()

    captured = orjson.dumps(orjson.loads(FIXTURE.read_bytes())["body"])
    parse = per_call(lambda: orjson.loads(captured), calls=5_000, clock=time.process_time)
    thread = per_batch / 256

    print("on the event loop, per request, after the answer was sent:")
    print(f"  the ledger's listener (row + deque append)    {listener:6.2f} us wall  ({written:,} rows written, {dropped} dropped)")
    print(f"    of which Exchange -> row                    {to_row:6.2f} us CPU")
    print("in the writer thread, per request, CPU time:")
    print(f"  INSERT, 256 rows per transaction              {per_batch / 256:6.2f} us   ({per_batch / 1000:.2f} ms a batch)")
    print(f"  in all: 1,000 requests/s cost                 {(to_row + thread) / 10:6.2f} % of one core")
    print("for scale, CPU time:")
    print(f"  orjson.loads of the captured 17 KB body       {parse:6.2f} us")


if __name__ == "__main__":
    main()
