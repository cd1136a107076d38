"""Properties of the rewrites over random conversations (hypothesis)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.wire.messages import merge_system_turns
from gateway.wire.signatures import SignatureStore
from gateway.wire.thinking import THINKING_TYPES, signature_of, strip_foreign_thinking

SIGNATURES = [f"sig-{i}" for i in range(6)]
ISSUERS = {"sig-0": "anthropic", "sig-1": "anthropic", "sig-2": "zai", "sig-3": "zai"}  # sig-4, sig-5: never seen

text = st.builds(lambda t: {"type": "text", "text": t}, st.text(max_size=5))
tool_use = st.builds(lambda i: {"type": "tool_use", "id": f"t{i}", "name": "Read", "input": {}}, st.integers(0, 9))
thinking = st.builds(lambda s: {"type": "thinking", "thinking": "x", "signature": s}, st.sampled_from(SIGNATURES))
redacted = st.builds(lambda s: {"type": "redacted_thinking", "data": s}, st.sampled_from(SIGNATURES))
blocks = st.lists(st.one_of(text, tool_use, thinking, redacted), max_size=4)
content = st.one_of(st.text(max_size=5), blocks)
message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]), "content": content})
conversation = st.fixed_dictionaries(
    {"model": st.just("m"), "messages": st.lists(message, max_size=8)},
    optional={
        "system": st.one_of(st.text(max_size=5), st.lists(text, max_size=2)),
        "thinking": st.sampled_from([{"type": "enabled", "budget_tokens": 1024}, {"type": "adaptive"}, {"type": "disabled"}]),
    },
)


def store() -> SignatureStore:
    signatures = SignatureStore()
    for signature, issuer in ISSUERS.items():
        signatures.record(signature, issuer)
    return signatures


def kept_blocks(doc: dict[str, Any]) -> list[Any]:
    """Every block that is not thinking, in order (string content as one text block)."""
    out: list[Any] = []
    for m in doc["messages"]:
        c = m["content"]
        items = [{"type": "text", "text": c}] if isinstance(c, str) and c else c if isinstance(c, list) else []
        out += [b for b in items if b.get("type") not in THINKING_TYPES]
    return out


@settings(max_examples=300, deadline=None)
@given(conversation, st.sampled_from(["anthropic", "zai"]))
def test_foreign_removal_keeps_everything_else_and_never_mutates(doc: dict[str, Any], provider: str) -> None:
    before = copy.deepcopy(doc)
    out = strip_foreign_thinking(doc, provider, store())
    assert doc == before
    if out is None:
        return
    remaining = [
        b for m in out["messages"] if isinstance(m["content"], list) for b in m["content"]
        if isinstance(b, dict) and m["role"] == "assistant" and b.get("type") in THINKING_TYPES
    ]
    assert all(ISSUERS.get(signature_of(b) or "", provider) == provider for b in remaining)
    assert kept_blocks(out) == kept_blocks(doc)
    emptied_before = sum(1 for m in doc["messages"] if m["role"] == "assistant" and m["content"] == [])
    assert sum(1 for m in out["messages"] if m["role"] == "assistant" and m["content"] == []) <= emptied_before


@settings(max_examples=300, deadline=None)
@given(conversation)
def test_merge_moves_every_system_turn_in_order_and_never_mutates(doc: dict[str, Any]) -> None:
    before = copy.deepcopy(doc)
    out = merge_system_turns(doc)
    assert doc == before
    turns = [m for m in doc["messages"] if m["role"] == "system"]
    if out is None:
        assert turns == []
        return
    assert all(m["role"] != "system" for m in out["messages"])
    moved = [b for m in turns for b in ([{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) and m["content"] else m["content"] if isinstance(m["content"], list) else [])]
    if moved or doc.get("system"):
        assert out["system"][len(out["system"]) - len(moved):] == moved
    others = [m for m in doc["messages"] if m["role"] != "system"]
    assert kept_blocks({"messages": others}) == kept_blocks(out)
