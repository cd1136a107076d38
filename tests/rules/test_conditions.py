"""rules.conditions: request facts from headers and bodies, and what a `when` holds for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rules.conditions import REQUEST_CLASSES, Conditions, RequestFacts, server_tools_in

REQUESTS = Path(__file__).resolve().parents[1] / "data" / "requests"


def captured(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REQUESTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


# --- facts from headers -------------------------------------------------------------------

def test_facts_of_the_captured_requests() -> None:
    main = captured("cc_hint_headers_main_spawning_agent")
    subagent = captured("cc_hint_headers_subagent")
    plain = captured("cc_print_haiku_stream")
    assert RequestFacts.from_headers(main["headers"]) == RequestFacts("main", None, False)
    assert RequestFacts.from_headers(subagent["headers"]) == RequestFacts("subagent", "general-purpose", False)
    assert RequestFacts.from_headers(plain["headers"]) == RequestFacts()
    assert RequestFacts() == RequestFacts("unknown", None, False)


@pytest.mark.parametrize(
    ("value", "request_class"),
    [
        ("main", "main"),
        ("  Compaction\t", "compaction"),
        ("SIDE_REPLY", "side_reply"),
        ("unknown", "unknown"),
        ("subagents", "unknown"),  # not one Claude Code documents
        ("blocking-subagent", "unknown"),  # x-claude-1p-request-class's value, not this header's
        ("", "unknown"),
    ],
)
def test_request_class_is_normalised_and_anything_else_is_unknown(value: str, request_class: str) -> None:
    facts = RequestFacts.from_headers({"x-claude-code-request-class": value})
    assert facts.request_class == request_class


def test_agent_type_is_stripped_kept_as_sent_and_empty_means_absent() -> None:
    assert RequestFacts.from_headers({"x-claude-code-agent-type": " Code-Reviewer "}).agent_type == "Code-Reviewer"
    assert RequestFacts.from_headers({"x-claude-code-agent-type": "  "}).agent_type is None
    assert RequestFacts.from_headers({}).agent_type is None


def test_server_tools_is_the_callers_to_say() -> None:
    assert RequestFacts.from_headers({}, server_tools=True).server_tools is True
    assert RequestFacts.from_headers({}).server_tools is False


def test_facts_refuse_a_request_class_that_is_not_normalised() -> None:
    with pytest.raises(ValueError, match="from_headers"):
        RequestFacts("Main")


# --- server tools in a body ---------------------------------------------------------------

def test_server_tools_are_tools_with_a_type_other_than_custom() -> None:
    assert server_tools_in([{"type": "web_search_20250305", "name": "web_search"}])
    assert server_tools_in([{"name": "Bash"}, {"type": "code_execution_20250825", "name": "x"}])
    assert not server_tools_in([{"name": "Bash", "input_schema": {}}, {"type": "custom", "name": "Read"}])
    assert not server_tools_in([])
    assert not server_tools_in(None)
    assert not server_tools_in("web_search")
    assert not server_tools_in([["type", "web_search"], "x", {"type": None}])


def test_the_captured_requests_carry_no_server_tool() -> None:
    for name in ("cc_hint_headers_main_spawning_agent", "cc_hint_headers_subagent", "cc_print_haiku_stream"):
        tools = captured(name)["body"]["tools"]
        assert tools and not server_tools_in(tools), name


# --- conditions -----------------------------------------------------------------------------

SUBAGENT = RequestFacts("subagent", "general-purpose")


def test_request_class_condition() -> None:
    when = Conditions(request_class=frozenset({"subagent", "compaction"}))
    assert when.holds(SUBAGENT)
    assert when.holds(RequestFacts("compaction"))
    assert not when.holds(RequestFacts("main"))
    assert not when.holds(RequestFacts())
    assert Conditions(request_class=frozenset({"unknown"})).holds(RequestFacts())


def test_agent_type_globs_are_case_insensitive_and_need_the_header() -> None:
    when = Conditions(agent_type=("general-*", "Code-Reviewer"))
    assert when.holds(SUBAGENT)
    assert when.holds(RequestFacts("subagent", "GENERAL-PURPOSE"))
    assert when.holds(RequestFacts("main", "code-reviewer"))
    assert not when.holds(RequestFacts("subagent", "code-reviewer-2"))
    assert not when.holds(RequestFacts("subagent", None))
    assert Conditions(agent_type=("*",)).holds(RequestFacts("subagent", "anything"))
    assert not Conditions(agent_type=("*",)).holds(RequestFacts("subagent"))


def test_server_tools_condition_both_ways() -> None:
    assert Conditions(server_tools=True).holds(RequestFacts(server_tools=True))
    assert not Conditions(server_tools=True).holds(RequestFacts())
    assert Conditions(server_tools=False).holds(RequestFacts())
    assert not Conditions(server_tools=False).holds(RequestFacts(server_tools=True))


def test_every_condition_given_must_hold() -> None:
    when = Conditions(frozenset({"subagent"}), ("general-*",), False)
    assert when.holds(SUBAGENT)
    assert not when.holds(RequestFacts("main", "general-purpose"))
    assert not when.holds(RequestFacts("subagent", "explore"))
    assert not when.holds(RequestFacts("subagent", "general-purpose", server_tools=True))


def test_holds_apart_from_agent_ignores_only_the_agent_type() -> None:
    when = Conditions(frozenset({"subagent"}), ("general-*",), True)
    assert when.holds_apart_from_agent("subagent", True)
    assert not when.holds_apart_from_agent("main", True)
    assert not when.holds_apart_from_agent("subagent", False)


def test_conditions_refuse_nothing_and_unknown_classes() -> None:
    with pytest.raises(ValueError, match="at least one condition"):
        Conditions()
    with pytest.raises(ValueError, match="subagents"):
        Conditions(request_class=frozenset({"subagents"}))
    with pytest.raises(ValueError, match="at least one class"):
        Conditions(request_class=frozenset())
    with pytest.raises(ValueError, match="at least one glob"):
        Conditions(agent_type=())


def test_conditions_are_values_whatever_was_compiled() -> None:
    a = Conditions(agent_type=("x*",))
    b = Conditions(agent_type=("x*",))
    assert a.holds(RequestFacts("subagent", "xy"))  # compiles a's regex, not b's
    assert a == b and hash(a) == hash(b)


def test_describe_lists_the_conditions_in_a_fixed_order() -> None:
    when = Conditions(frozenset({"compaction", "subagent"}), ("general-*", "x"), True)
    assert when.describe() == "request_class subagent or compaction, agent_type 'general-*' or 'x', server_tools true"
    assert Conditions(server_tools=False).describe() == "server_tools false"


def test_request_classes_are_claude_codes_and_unknown() -> None:
    assert REQUEST_CLASSES == ("main", "subagent", "workflow", "compaction", "auxiliary", "side_reply", "unknown")
