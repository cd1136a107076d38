"""gateway.wire.rewrite on the captured Claude Code requests: which bytes each target receives."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.wire.body import parse_body
from gateway.wire.rewrite import body_for_target, rewrite
from gateway.wire.signatures import SignatureStore
from policy.captured import ALL_BODIES, MESSAGE_REQUESTS, request_bytes
from rules.model import BetaPolicy, KeySource, Provider, Target

ZAI_POLICY: dict[str, Any] = {
    "system_turns": "merge",
    "tool_choice": "auto",
    "betas": BetaPolicy("drop"),
    "drop_fields": ("context_management", "output_config"),
}


def provider(name: str = "anthropic", **policy: Any) -> Provider:
    return Provider(name, "http://127.0.0.1:9", (KeySource("env", "KEY"),), **policy)


@pytest.mark.parametrize("name", ALL_BODIES)
def test_no_policy_sends_the_clients_own_bytes(name: str) -> None:
    body = parse_body(request_bytes(name))
    sent = body_for_target(body, Target(provider()), SignatureStore())
    assert sent is body.raw  # the very object: not even re-serialised


@pytest.mark.parametrize("name", ALL_BODIES)
def test_same_model_name_is_no_rewrite(name: str) -> None:
    body = parse_body(request_bytes(name))
    assert body_for_target(body, Target(provider(), body.model), SignatureStore()) is body.raw


@pytest.mark.parametrize("name", ALL_BODIES)
def test_model_rewrite_changes_only_the_model(name: str) -> None:
    body = parse_body(request_bytes(name))
    sent = orjson.loads(body_for_target(body, Target(provider(), "glm-4.7"), SignatureStore()))
    assert sent == {**body.doc, "model": "glm-4.7"}


@pytest.mark.parametrize("name", MESSAGE_REQUESTS)
def test_zai_policy_on_captured_requests(name: str) -> None:
    body = parse_body(request_bytes(name))
    result = rewrite(body, Target(provider("zai", **ZAI_POLICY), "glm-4.7"), SignatureStore())
    doc = result.doc
    renamed = ("model",) if body.model != "glm-4.7" else ()  # one capture already asks for glm-4.7
    assert result.applied == ("drop_fields", "system_turns", *renamed)
    assert "context_management" not in doc and "output_config" not in doc
    assert [m["role"] for m in doc["messages"] if m["role"] == "system"] == []
    turns = [m for m in body.doc["messages"] if m["role"] == "system"]
    assert len(turns) == 1
    turn_text = turns[0]["content"] if isinstance(turns[0]["content"], str) else turns[0]["content"][0]["text"]
    assert doc["system"][: len(body.doc["system"])] == body.doc["system"]
    assert doc["system"][-1]["text"] == turn_text
    # Everything else the client sent is still there, unchanged.
    untouched = set(body.doc) - {"context_management", "output_config", "system", "messages", "model"}
    assert {k: doc[k] for k in untouched} == {k: body.doc[k] for k in untouched}


@pytest.mark.parametrize("name", ALL_BODIES)
def test_no_rewrite_mutates_the_shared_document(name: str) -> None:
    body = parse_body(request_bytes(name))
    before = copy.deepcopy(body.doc)
    everything = provider(
        "zai",
        thinking="strip",
        thinking_param="drop",
        system_turns="merge",
        tool_choice="auto",
        drop_fields=("context_management", "output_config", "metadata"),
        strip_cache_control=True,
    )
    result = rewrite(body, Target(everything, "glm-4.7"), SignatureStore())
    assert result.applied
    assert body.doc == before
    assert orjson.loads(body.raw) == before


def test_unchanged_parts_are_shared_not_copied() -> None:
    body = parse_body(request_bytes("cc_print_sonnet_tool_result_turn2.json"))
    result = rewrite(body, Target(provider("zai", drop_fields=("context_management",))), SignatureStore())
    assert result.doc is not body.doc
    assert result.doc["tools"] is body.doc["tools"]
    assert result.doc["messages"] is body.doc["messages"]


def test_a_policy_with_nothing_to_do_keeps_the_bytes() -> None:
    # The count_tokens body has no system turn, no context_management, no tool_choice.
    body = parse_body(request_bytes("cc_interactive_count_tokens.json"))
    target = Target(provider("zai", **ZAI_POLICY, strip_cache_control=True, thinking_param="no_budget"))
    result = rewrite(body, target, SignatureStore())
    assert result.applied == ()
    assert result.doc is body.doc
    assert body_for_target(body, target, SignatureStore()) is body.raw


def test_rewrites_run_in_the_documented_order() -> None:
    doc = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 10,
        "thinking": {"type": "enabled", "budget_tokens": 1000},
        "tool_choice": {"type": "any"},
        "metadata": {"user_id": "u"},
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "note"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "sig"}, {"type": "text", "text": "x"}]},
            {"role": "user", "content": "more"},
        ],
    }
    everything = provider(
        thinking="strip",
        thinking_param="no_budget",
        system_turns="merge",
        tool_choice="auto",
        drop_fields=("metadata",),
        strip_cache_control=True,
    )
    result = rewrite(parse_body(orjson.dumps(doc)), Target(everything, "m"), SignatureStore())
    assert result.applied == ("drop_fields", "thinking", "thinking_param", "system_turns", "tool_choice", "cache_control", "model")
    assert result.doc == {
        "model": "m",
        "max_tokens": 10,
        "thinking": {"type": "enabled"},
        "tool_choice": {"type": "auto"},
        "system": [{"type": "text", "text": "s"}, {"type": "text", "text": "note"}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "x"}]},
            {"role": "user", "content": "more"},
        ],
    }


def test_parse_body_rejects_what_is_not_a_messages_body() -> None:
    from gateway.errors import InvalidRequest

    for raw, words in ((b"{", "not valid JSON"), (b"[]", "JSON object"), (b'{"model": ""}', "model")):
        with pytest.raises(InvalidRequest, match=words):
            parse_body(raw)
