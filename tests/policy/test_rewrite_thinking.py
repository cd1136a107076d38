"""thinking = "foreign" / "strip", and Anthropic's rule for tool use under thinking."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.wire.signatures import SignatureStore
from gateway.wire.thinking import strip_foreign_thinking, strip_thinking
from policy.captured import ALL_BODIES, request_body


def thinking(text: str, signature: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": text, "signature": signature}


def redacted(data: str) -> dict[str, Any]:
    return {"type": "redacted_thinking", "data": data}


def tool_loop(first_turn: list[dict[str, Any]], last_turn: list[dict[str, Any]], thinking_type: str = "enabled") -> dict[str, Any]:
    """The captured second turn, grown into: turn A (text answer), then turn B calling a tool."""
    doc = request_body("cc_print_sonnet_tool_result_turn2.json")
    user, system_turn, assistant, tool_result = doc["messages"]
    doc["messages"] = [
        user,
        system_turn,
        {"role": "assistant", "content": [*first_turn, {"type": "text", "text": "Done."}]},
        {"role": "user", "content": "now read the file"},
        {"role": "assistant", "content": [*last_turn, *assistant["content"]]},
        tool_result,
    ]
    doc["thinking"] = {"type": thinking_type, "budget_tokens": 4000} if thinking_type == "enabled" else {"type": thinking_type}
    return doc


def run(doc: dict[str, Any], store: SignatureStore, provider: str) -> dict[str, Any] | None:
    before = copy.deepcopy(doc)
    out = strip_foreign_thinking(doc, provider, store)
    assert doc == before  # never mutated
    return out


@pytest.fixture
def store() -> SignatureStore:
    signatures = SignatureStore()
    signatures.record("sig-by-anthropic", "anthropic")
    signatures.record("sig-by-zai", "zai")
    signatures.record("redacted-by-zai", "zai")
    return signatures


@pytest.mark.parametrize("name", ALL_BODIES)
def test_captured_requests_hold_nothing_foreign(name: str, store: SignatureStore) -> None:
    assert strip_foreign_thinking(request_body(name), "zai", store) is None


def test_blocks_of_another_provider_go_own_and_unknown_stay(store: SignatureStore) -> None:
    doc = tool_loop([thinking("a", "sig-by-zai"), thinking("b", "sig-never-seen")], [thinking("c", "sig-by-anthropic")])
    out = run(doc, store, "anthropic")
    assert out is not None
    assert out["messages"][2]["content"] == [thinking("b", "sig-never-seen"), {"type": "text", "text": "Done."}]
    assert out["messages"][4] is doc["messages"][4]  # anthropic's own turn: shared, untouched
    assert out["thinking"] == doc["thinking"]


def test_redacted_thinking_is_judged_by_its_data(store: SignatureStore) -> None:
    doc = tool_loop([redacted("redacted-by-zai"), redacted("other")], [])
    out = run(doc, store, "anthropic")
    assert out is not None
    assert out["messages"][2]["content"][0] == redacted("other")
    assert run(doc, store, "zai") is None


def test_nothing_foreign_changes_nothing(store: SignatureStore) -> None:
    doc = tool_loop([thinking("a", "sig-by-anthropic")], [thinking("b", "sig-never-seen")])
    assert run(doc, store, "anthropic") is None


def test_emptying_the_last_tool_use_turn_drops_the_thinking_parameter(store: SignatureStore) -> None:
    doc = tool_loop([], [thinking("c", "sig-by-anthropic")])
    out = run(doc, store, "zai")
    assert out is not None
    assert out["messages"][4]["content"][0]["type"] == "text"
    assert "thinking" not in out
    assert doc["thinking"] == {"type": "enabled", "budget_tokens": 4000}


def test_adaptive_thinking_follows_the_same_rule(store: SignatureStore) -> None:
    out = run(tool_loop([], [redacted("redacted-by-zai")], "adaptive"), store, "anthropic")
    assert out is not None and "thinking" not in out


def test_disabled_thinking_is_left_as_sent(store: SignatureStore) -> None:
    out = run(tool_loop([], [thinking("c", "sig-by-anthropic")], "disabled"), store, "zai")
    assert out is not None and out["thinking"] == {"type": "disabled"}


def test_thinking_still_first_keeps_the_parameter(store: SignatureStore) -> None:
    doc = tool_loop([], [thinking("own", "sig-by-zai"), thinking("c", "sig-by-anthropic")])
    out = run(doc, store, "zai")
    assert out is not None
    assert out["messages"][4]["content"][0] == thinking("own", "sig-by-zai")
    assert "thinking" in out


def test_only_the_last_assistant_turn_counts(store: SignatureStore) -> None:
    # The earlier turn loses its thinking, the last one keeps its own: parameter kept.
    doc = tool_loop([thinking("a", "sig-by-anthropic")], [thinking("b", "sig-by-zai")])
    out = run(doc, store, "zai")
    assert out is not None and "thinking" in out


def test_last_turn_without_tool_use_keeps_the_parameter(store: SignatureStore) -> None:
    doc = tool_loop([], [])
    doc["messages"] = doc["messages"][:4] + [{"role": "assistant", "content": [thinking("x", "sig-by-anthropic"), {"type": "text", "text": "hi"}]}]
    out = run(doc, store, "zai")
    assert out is not None and "thinking" in out


def test_a_turn_left_empty_is_removed_and_its_neighbours_joined(store: SignatureStore) -> None:
    doc = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [thinking("only thinking", "sig-by-anthropic")]},
            {"role": "user", "content": "again"},
        ],
    }
    out = run(doc, store, "zai")
    assert out == {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "q"}, {"type": "text", "text": "again"}]}]}


def test_strip_removes_every_thinking_block_signed_or_not() -> None:
    doc = tool_loop([thinking("a", "x"), {"type": "thinking", "thinking": "unsigned"}], [redacted("r")])
    out = strip_thinking(doc)
    assert out is not None
    assert b'"thinking","thinking"' not in orjson.dumps(out["messages"])
    assert b"redacted_thinking" not in orjson.dumps(out)
    assert "thinking" not in out  # the tool-use turn lost its thinking: the rule applies here too


def test_a_store_with_only_the_targets_signatures_skips_the_walk() -> None:
    store = SignatureStore()
    store.record("sig-a", "anthropic")
    doc = tool_loop([thinking("a", "sig-a")], [thinking("b", "sig-never-seen")])
    assert store.only_from("anthropic") and not store.only_from("zai")
    assert run(doc, store, "anthropic") is None
    assert run(doc, store, "zai") is not None


def test_store_counts_follow_re_records_and_evictions() -> None:
    store = SignatureStore(capacity=2)
    store.record("s1", "zai")
    store.record("s1", "anthropic")  # the same signature now attributed to anthropic
    assert store.only_from("anthropic")
    store.record("s2", "zai")
    store.record("s3", "anthropic")  # evicts s1
    assert store.issuer("s1") is None and not store.only_from("anthropic")
    store.record("s4", "anthropic")  # evicts s2, the last zai signature
    assert store.only_from("anthropic") and len(store) == 2
