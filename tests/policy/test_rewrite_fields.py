"""drop_fields, tool_choice, thinking_param and strip_cache_control, on captured requests."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from gateway.wire.fields import (
    auto_tool_choice,
    drop_fields,
    drop_thinking_budget,
    drop_thinking_param,
    strip_cache_control,
)
from policy.captured import request_body


def test_drop_fields_removes_only_the_named_fields() -> None:
    doc = request_body("cc_interactive_sonnet_stream.json")
    out = drop_fields(doc, ("context_management", "output_config", "safeguards", "not_there"))
    assert out is not None
    assert set(doc) - set(out) == {"context_management", "output_config", "safeguards"}
    assert all(out[k] is doc[k] for k in out)


def test_drop_fields_with_nothing_present_changes_nothing() -> None:
    assert drop_fields(request_body("cc_interactive_count_tokens.json"), ("context_management",)) is None


def test_forced_tool_choice_becomes_auto() -> None:
    doc: dict[str, Any] = {"model": "m", "tool_choice": {"type": "tool", "name": "Read", "disable_parallel_tool_use": True}}
    assert auto_tool_choice(doc) == {"model": "m", "tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}
    assert auto_tool_choice({"tool_choice": {"type": "any"}}) == {"tool_choice": {"type": "auto"}}
    assert doc["tool_choice"]["type"] == "tool"  # input untouched


def test_unforced_tool_choice_is_left_alone() -> None:
    assert auto_tool_choice({"tool_choice": {"type": "auto"}}) is None
    assert auto_tool_choice({"tool_choice": {"type": "none"}}) is None
    assert auto_tool_choice(request_body("cc_print_haiku_stream.json")) is None  # Claude Code sent none


def test_thinking_param_drop_and_no_budget() -> None:
    doc = {"model": "m", "thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert drop_thinking_param(doc) == {"model": "m"}
    assert drop_thinking_budget(doc) == {"model": "m", "thinking": {"type": "enabled"}}
    assert doc["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    adaptive = request_body("cc_print_haiku_stream.json")
    assert drop_thinking_budget(adaptive) is None  # adaptive thinking has no budget
    assert drop_thinking_param({"model": "m"}) is None


def test_strip_cache_control_removes_every_marker_of_a_captured_request() -> None:
    doc = request_body("cc_print_sonnet_tool_result_turn2.json")
    before = copy.deepcopy(doc)
    raw = orjson.dumps(doc)
    assert raw.count(b"cache_control") >= 3  # system blocks and the tool_result block
    out = strip_cache_control(doc)
    assert out is not None
    assert b"cache_control" not in orjson.dumps(out)
    assert doc == before
    assert out["tools"] is doc["tools"]  # no marker there: shared, not copied


def test_strip_cache_control_reaches_tools_nested_tool_results_and_the_top_level() -> None:
    marker = {"type": "ephemeral"}
    doc: dict[str, Any] = {
        "cache_control": marker,
        "tools": [{"name": "a"}, {"name": "b", "cache_control": marker}],
        "messages": [
            {"role": "user", "content": "plain"},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "r", "cache_control": marker}]},
                ],
            },
        ],
    }
    out = strip_cache_control(doc)
    assert out == {
        "tools": [{"name": "a"}, {"name": "b"}],
        "messages": [
            {"role": "user", "content": "plain"},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "r"}]}]},
        ],
    }
    assert out["tools"][0] is doc["tools"][0]
    assert out["messages"][0] is doc["messages"][0]


def test_strip_cache_control_without_markers_changes_nothing() -> None:
    assert strip_cache_control(request_body("cc_interactive_count_tokens.json")) is None
