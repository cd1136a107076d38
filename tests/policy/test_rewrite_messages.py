"""system_turns = "merge" on the captured requests, and the message-list helper."""

from __future__ import annotations

import copy

from gateway.wire.messages import merge_system_turns, without_messages
from policy.captured import MESSAGE_REQUESTS, request_body


def test_every_captured_system_turn_moves_to_the_end_of_system() -> None:
    for name in MESSAGE_REQUESTS:
        doc = request_body(name)
        before = copy.deepcopy(doc)
        out = merge_system_turns(doc)
        assert out is not None, name
        assert all(m["role"] != "system" for m in out["messages"]), name
        turn = next(m for m in doc["messages"] if m["role"] == "system")
        moved = turn["content"] if isinstance(turn["content"], list) else [{"type": "text", "text": turn["content"]}]
        assert out["system"] == [*doc["system"], *moved], name
        assert len(out["messages"]) == len(doc["messages"]) - 1, name
        assert doc == before, name


def test_cache_control_of_a_moved_block_is_kept() -> None:
    doc = request_body("cc_print_haiku_stream.json")
    out = merge_system_turns(doc)
    assert out is not None
    assert out["system"][-1]["cache_control"] == {"type": "ephemeral"}


def test_string_system_and_several_turns_keep_their_order() -> None:
    doc = {
        "system": "base",
        "messages": [
            {"role": "system", "content": "first"},
            {"role": "user", "content": "q"},
            {"role": "system", "content": [{"type": "text", "text": "second"}]},
        ],
    }
    assert merge_system_turns(doc) == {
        "system": [
            {"type": "text", "text": "base"},
            {"type": "text", "text": "first"},
            {"type": "text", "text": "second"},
        ],
        "messages": [{"role": "user", "content": "q"}],
    }


def test_no_system_turn_changes_nothing() -> None:
    assert merge_system_turns(request_body("cc_interactive_count_tokens.json")) is None
    assert merge_system_turns({"messages": "not a list"}) is None


def test_turns_that_become_neighbours_are_joined() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "system", "content": "s"},
        {"role": "user", "content": [{"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "c"},
    ]
    assert without_messages(messages, {1}) == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "c"},
    ]
    assert messages[0] == {"role": "user", "content": "a"}


def test_neighbours_the_client_sent_are_left_as_they_were() -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "system", "content": "s"}]
    assert without_messages(messages, {2}) == messages[:2]
