"""RuleSet.resolve(model, facts): first route whose patterns match and whose `when` holds."""

from __future__ import annotations

import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import matching
from rules.conditions import REQUEST_CLASSES, Conditions, RequestFacts
from rules.matching import Matcher
from rules.model import Provider, Route, RuleSet, Target

P = Provider("p", "https://p.example", ())


def route(name: str, *match: str, when: Conditions | None = None) -> Route:
    return Route(name, match, (Target(P),), when=when)


def ruleset(*routes: Route) -> RuleSet:
    return RuleSet({"p": P}, tuple(routes))


def name_of(found: Route | None) -> str | None:
    return None if found is None else found.name


SUBAGENT = Conditions(request_class=frozenset({"subagent"}))
HELPERS = ruleset(
    route("haiku", "claude-haiku-*"),
    route("reviewer", "claude-*", when=Conditions(frozenset({"subagent"}), ("*review*",))),
    route("helpers", "claude-*", when=Conditions(request_class=frozenset({"subagent", "compaction"}))),
    route("search", "*", when=Conditions(server_tools=True)),
    route("default", "claude-*"),
    route("after-default", "claude-opus-*", when=SUBAGENT),  # never reached: default comes first
)


# --- resolve tables ---------------------------------------------------------------------------

def test_resolve_table() -> None:
    cases: list[tuple[str, RequestFacts | None, str | None]] = [
        ("claude-sonnet-5-5", None, "default"),
        ("claude-sonnet-5-5", RequestFacts(), "default"),
        ("claude-sonnet-5-5", RequestFacts("main"), "default"),
        ("claude-sonnet-5-5", RequestFacts("subagent", "general-purpose"), "helpers"),
        ("claude-sonnet-5-5", RequestFacts("subagent", "Code-Reviewer"), "reviewer"),
        ("claude-sonnet-5-5", RequestFacts("compaction", "code-reviewer"), "helpers"),
        ("claude-sonnet-5-5", RequestFacts("main", server_tools=True), "search"),
        ("claude-haiku-5-5", RequestFacts("subagent"), "haiku"),  # model-only route first
        ("claude-opus-5-5", RequestFacts("subagent", "x"), "helpers"),
        ("gpt-5", RequestFacts("subagent"), None),
        ("gpt-5", RequestFacts(server_tools=True), "search"),
        ("gpt-5", None, None),
    ]
    for model, facts, want in cases:
        assert name_of(HELPERS.resolve(model, facts)) == want, (model, facts)


def test_answers_do_not_depend_on_the_order_of_questions() -> None:
    # The per-name cache and the per-facts indexes are filled by whichever question comes first.
    asked = [
        ("claude-x", RequestFacts("subagent", "reviewer")),
        ("claude-x", RequestFacts("subagent")),
        ("claude-x", None),
        ("claude-x", RequestFacts("subagent", "reviewer")),
    ]
    fresh = [name_of(ruleset(*HELPERS.routes).resolve(m, f)) for m, f in asked]
    again = [name_of(HELPERS.resolve(m, f)) for m, f in asked]
    assert fresh == again == ["reviewer", "helpers", "default", "reviewer"]


def test_candidates_are_the_matching_routes_up_to_the_first_without_when() -> None:
    assert [r.name for r in HELPERS.candidates("claude-sonnet-5-5")] == ["reviewer", "helpers", "search", "default"]
    assert [r.name for r in HELPERS.candidates("claude-opus-5-5")] == ["reviewer", "helpers", "search", "default"]
    assert [r.name for r in HELPERS.candidates("claude-haiku-5-5")] == ["haiku"]
    assert [r.name for r in HELPERS.candidates("gpt-5")] == ["search"]
    assert [r.name for r in HELPERS.candidates("")] == ["search"]
    assert ruleset(route("a", "x")).candidates("y") == ()


def test_flags_say_what_the_gateway_must_look_at() -> None:
    assert HELPERS.conditional and HELPERS.uses_server_tools
    plain = ruleset(route("a", "claude-*"), route("b", "*"))
    assert not plain.conditional and not plain.uses_server_tools
    classes_only = ruleset(route("a", "*", when=SUBAGENT))
    assert classes_only.conditional and not classes_only.uses_server_tools


def test_model_only_rulesets_answer_the_route_itself_from_the_cache() -> None:
    plain = ruleset(route("a", "claude-*"), route("b", "*"))
    found = plain.resolve("claude-x", RequestFacts("subagent"))
    assert found is plain.routes[0]
    assert plain._answers["claude-x"] is plain.routes[0]
    assert plain.resolve("gpt", None) is plain.routes[1]


def test_names_with_the_same_candidates_share_their_indexes() -> None:
    rules = ruleset(route("sub", "claude-*", when=SUBAGENT), route("rest", "*"))
    rules.resolve("claude-a", RequestFacts("subagent"))
    rules.resolve("claude-b", None)
    assert rules._answers["claude-a"] is rules._answers["claude-b"]


def test_the_cache_stays_bounded_under_a_flood_of_names() -> None:
    rules = ruleset(route("sub", "m-1*", when=SUBAGENT), route("rest", "m-*"))
    for i in range(matching._CACHE_LIMIT * 2 + 10):
        facts = RequestFacts("subagent" if i % 2 else "main")
        want = "sub" if str(i).startswith("1") and i % 2 else "rest"
        assert name_of(rules.resolve(f"m-{i}", facts)) == want, i
        assert len(rules._answers) <= matching._CACHE_LIMIT


def test_many_agent_routes_on_one_model() -> None:
    # The agent types of one model's candidates are indexed, not tried one by one.
    routes = [route(f"agent-{i}", "claude-*", when=Conditions(agent_type=(f"agent-{i}",))) for i in range(300)]
    routes.append(route("globbed", "claude-*", when=Conditions(frozenset({"subagent"}), ("agent-*",))))
    routes.append(route("default", "*"))
    rules = ruleset(*routes)
    assert name_of(rules.resolve("claude-x", RequestFacts("subagent", "AGENT-299"))) == "agent-299"
    assert name_of(rules.resolve("claude-x", RequestFacts("subagent", "agent-300"))) == "globbed"
    assert name_of(rules.resolve("claude-x", RequestFacts("main", "agent-300"))) == "default"
    assert name_of(rules.resolve("claude-x", RequestFacts("main", "agent-7"))) == "agent-7"


# --- Matcher.find_all -------------------------------------------------------------------------

def test_find_all_lists_every_matching_route_in_order() -> None:
    m = Matcher([["glm-4.7"], ["GLM-4.7", "glm-*"], ["*-4.7"], ["x"], ["glm-4.7"], ["*"]])
    assert m.find_all("glm-4.7") == [0, 1, 2, 4, 5]
    assert m.find_all("glm-5") == [1, 5]
    assert m.find_all("") == [5]
    assert Matcher([["a"]]).find_all("b") == []


# --- the property: resolve equals the naive reading of the rules ----------------------------

# Common shapes often, so that several routes match one name; any glob now and then.
_PATTERN = st.sampled_from(["*", "a*", "*b", "a?", "[ab]*", "A", "ab"]) | st.text(alphabet="ab-[]!*?A", min_size=1, max_size=4)
_CONDITIONS = (
    st.tuples(
        st.none() | st.frozensets(st.sampled_from(REQUEST_CLASSES), min_size=1, max_size=3),
        st.none() | st.lists(_PATTERN, min_size=1, max_size=2).map(tuple),
        st.none() | st.booleans(),
    )
    .filter(lambda given: given != (None, None, None))
    .map(lambda given: Conditions(*given))
)
_ROUTES = st.lists(
    st.tuples(st.lists(_PATTERN, min_size=1, max_size=2), st.none() | _CONDITIONS, st.booleans()),
    min_size=1,
    max_size=6,
)
_FACTS = st.builds(
    RequestFacts,
    request_class=st.sampled_from(REQUEST_CLASSES),
    agent_type=st.none() | st.text(alphabet="abA-![]", max_size=3),
    server_tools=st.booleans(),
)


def naive_holds(when: Conditions, facts: RequestFacts) -> bool:
    if when.request_class is not None and facts.request_class not in when.request_class:
        return False
    if when.server_tools is not None and when.server_tools != facts.server_tools:
        return False
    if when.agent_type is not None:
        agent = facts.agent_type
        return agent is not None and any(fnmatch.fnmatchcase(agent.lower(), g.lower()) for g in when.agent_type)
    return True


def naive_matches(r: Route, model: str) -> bool:
    return any(fnmatch.fnmatchcase(model.lower(), p.lower()) for p in r.match)


@settings(max_examples=300, deadline=None)
@given(
    spec=_ROUTES,
    questions=st.lists(st.tuples(st.text(alphabet="abA-![]", max_size=3), st.none() | _FACTS), min_size=1, max_size=8),
)
def test_resolve_is_the_first_route_that_matches_and_holds(
    spec: list[tuple[list[str], Conditions | None, bool]],
    questions: list[tuple[str, RequestFacts | None]],
) -> None:
    routes = [route(f"r{i}", *patterns, when=when if keep else None) for i, (patterns, when, keep) in enumerate(spec)]
    rules = ruleset(*routes)
    for model, facts in questions:
        seen = facts or RequestFacts()
        expected = next(
            (r for r in routes if naive_matches(r, model) and (r.when is None or naive_holds(r.when, seen))), None
        )
        assert rules.resolve(model, facts) is expected, (model, facts)
        for r in routes:
            if r.when is not None:
                assert r.when.holds(seen) == naive_holds(r.when, seen)
        matching_routes = [r for r in routes if naive_matches(r, model)]
        cut = next((k + 1 for k, r in enumerate(matching_routes) if r.when is None), len(matching_routes))
        assert rules.candidates(model) == tuple(matching_routes[:cut])
