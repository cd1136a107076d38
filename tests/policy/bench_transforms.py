"""Micro-benchmark of the request rewrite on the ~52 KB captured Claude Code body (not a test).

    python tests/policy/bench_transforms.py

Prints microseconds per call for: parse (orjson.loads, paid by every request anyway), the
no-op path (default provider: thinking = "foreign" scan only), the Z.AI policy with a model
rewrite (copy + orjson.dumps), and a foreign-thinking history removal.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.wire.body import parse_body  # noqa: E402
from gateway.wire.rewrite import body_for_target  # noqa: E402
from gateway.wire.signatures import SignatureStore  # noqa: E402
from policy.captured import inflated_bytes  # noqa: E402
from rules.model import BetaPolicy, KeySource, Provider, Target  # noqa: E402


def per_call_us(fn: object, number: int) -> float:
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=7, number=number)) / number * 1e6


def main() -> None:
    raw = inflated_bytes("cc_print_haiku_stream.json")
    body = parse_body(raw)
    store = SignatureStore()
    key = (KeySource("env", "K"),)
    plain = Target(Provider("anthropic", "http://x", key))
    zai = Target(
        Provider(
            "zai", "http://x", key,
            betas=BetaPolicy("drop"), system_turns="merge", tool_choice="auto",
            drop_fields=("context_management", "output_config"),
        ),
        "glm-4.7",
    )
    # A history holding thinking blocks: 20 signed blocks, half issued by another provider.
    doc = orjson.loads(raw)
    for i in range(20):
        store.record(f"sig-{i}", "anthropic" if i % 2 else "zai")
        doc["messages"].insert(-1, {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "step " * 50, "signature": f"sig-{i}"},
            {"type": "text", "text": "ok"}]})
        doc["messages"].insert(-1, {"role": "user", "content": "next"})
    history = parse_body(orjson.dumps(doc))

    print(f"body: {len(raw)} bytes (history variant {len(history.raw)} bytes)")
    print(f"parse_body (orjson.loads, every request):   {per_call_us(lambda: parse_body(raw), 200):8.1f} us")
    single = SignatureStore()
    single.record("sig-x", "anthropic")
    assert body_for_target(body, plain, single) is raw and body_for_target(body, plain, store) is raw
    print(f"no-op, one signing provider (O(1) check):   {per_call_us(lambda: body_for_target(body, plain, single), 20000):8.2f} us")
    print(f"no-op, mixed providers (walk of turns):     {per_call_us(lambda: body_for_target(body, plain, store), 2000):8.2f} us")
    print(f"Z.AI policy + model rewrite (copy + dumps): {per_call_us(lambda: body_for_target(body, zai, store), 500):8.1f} us")
    print(f"  of which orjson.dumps alone:              {per_call_us(lambda: orjson.dumps(body.doc), 500):8.1f} us")
    print(f"foreign thinking removal, 20 signed blocks: {per_call_us(lambda: body_for_target(history, plain, store), 500):8.1f} us")


if __name__ == "__main__":
    main()
