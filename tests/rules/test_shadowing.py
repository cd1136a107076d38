"""rules.shadowing: which patterns earlier ones cover, decided exactly."""

from __future__ import annotations

import fnmatch
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.conditions import REQUEST_CLASSES, Conditions, RequestFacts
from rules.matching import Matcher
from rules.shadowing import Shadowed, conditions_cover, find_shadowed


def first(routes: list[list[str]], model: str) -> int:
    return Matcher(routes).resolve(model)


# --- shadowing ----------------------------------------------------------------------------

def test_exact_name_after_the_same_exact_name_is_shadowed() -> None:
    assert find_shadowed([["glm-4.7"], ["GLM-4.7"]]) == [
        Shadowed(route=1, position=0, pattern="GLM-4.7", covered_by=((0, "glm-4.7"),))
    ]


def test_exact_name_after_a_covering_glob_is_shadowed() -> None:
    assert find_shadowed([["glm-*"], ["x", "glm-4.7"]]) == [
        Shadowed(route=1, position=1, pattern="glm-4.7", covered_by=((0, "glm-*"),))
    ]


def test_pattern_after_catch_all_is_shadowed() -> None:
    found = find_shadowed([["*"], ["claude-*"], ["glm-4.7"]])
    assert [(s.route, s.pattern, s.covered_by) for s in found] == [
        (1, "claude-*", ((0, "*"),)),
        (2, "glm-4.7", ((0, "*"),)),
    ]


def test_narrower_glob_after_broader_glob_is_shadowed() -> None:
    found = find_shadowed([["claude-haiku-*"], ["claude-haiku-4-5*"]])
    assert found == [
        Shadowed(1, 0, "claude-haiku-4-5*", ((0, "claude-haiku-*"),))
    ]
    assert find_shadowed([["a*"], ["a?"]])[0].pattern == "a?"


def test_overlapping_but_not_covered_patterns_are_not_shadowed() -> None:
    assert find_shadowed([["claude-haiku-*"], ["claude-*-haiku"]]) == []
    assert find_shadowed([["a?"], ["a*"]]) == []
    assert find_shadowed([["glm-4.7"], ["glm-*"]]) == []
    assert find_shadowed([["glm-4.[57]"], ["glm-4.[5-8]"]]) == []


def test_earlier_pattern_in_the_same_route_shadows() -> None:
    found = find_shadowed([["claude-*", "claude-haiku-*"]])
    assert found == [Shadowed(0, 1, "claude-haiku-*", ((0, "claude-*"),))]
    assert find_shadowed([["glm-4.7", "GLM-4.7"]]) == [
        Shadowed(0, 1, "GLM-4.7", ((0, "glm-4.7"),))
    ]


def test_union_of_globs_shadows_and_names_only_the_needed_ones() -> None:
    found = find_shadowed([["ab*"], ["ax*"], ["ac*"], ["a[bc]*"]])
    assert found == [Shadowed(3, 0, "a[bc]*", ((0, "ab*"), (2, "ac*")))]


def test_union_of_exact_names_shadows_a_finite_set_pattern() -> None:
    found = find_shadowed([["glm-4.5"], ["glm-4.7"], ["glm-4.[57]"]])
    assert found == [Shadowed(2, 0, "glm-4.[57]", ((0, "glm-4.5"), (1, "glm-4.7")))]
    assert find_shadowed([["glm-4.5"], ["glm-4.[57]"]]) == []


def test_union_that_leaves_a_gap_does_not_shadow() -> None:
    # "a*" also matches "a" itself and "ad...", which neither earlier pattern does.
    assert find_shadowed([["ab*"], ["ac*"], ["a*"]]) == []
    # A negated set covers the rest of the characters: together they cover "a?*".
    assert find_shadowed([["a[!b]*"], ["ab*"], ["a[bc]?*"]])[0].pattern == "a[bc]?*"


def test_wide_character_ranges_do_not_hide_uncovered_names() -> None:
    # "[!a]" matches characters beyond U+FFFF that "[\x00-\uffff]" does not.
    routes = [["[\x00-\uffff]"], ["[!a]"]]
    assert find_shadowed(routes) == []
    assert first(routes, "\U00010000") == 1
    # Over the whole of Unicode the range does cover it.
    assert [s.pattern for s in find_shadowed([["[\x00-\U0010ffff]"], ["[!a]"]])] == ["[!a]"]


_ALPHABET = "ab-"


def _names(max_len: int) -> list[str]:
    # "z" stands for every character no pattern names.
    chars = _ALPHABET + "z"
    return ["".join(p) for n in range(max_len + 1) for p in itertools.product(chars, repeat=n)]


_SAMPLE = _names(4)


@settings(max_examples=150, deadline=None)
@given(
    routes=st.lists(
        st.lists(st.text(alphabet=_ALPHABET + "[]!*?", min_size=1, max_size=4), min_size=1, max_size=2),
        min_size=1,
        max_size=4,
    )
)
def test_every_shadowed_pattern_is_really_covered(routes: list[list[str]]) -> None:
    # Soundness on every name of up to 4 characters: no name the shadowed pattern matches
    # escapes the patterns named as covering it.
    for s in find_shadowed(routes):
        assert s.covered_by, s
        for name in _SAMPLE:
            if fnmatch.fnmatchcase(name, s.pattern):
                assert any(fnmatch.fnmatchcase(name, p) for _, p in s.covered_by), (s, name)
        for r, p in s.covered_by:
            assert r < s.route or (r == s.route and p in routes[r][: s.position])



def test_shadowing_through_a_big_bucket_of_one_prefix() -> None:
    routes = [[f"m-*-{i}"] for i in range(20)] + [["m-x-5"], ["m-[xy]-7"], ["m-*-5x"]]
    assert [(s.route, s.pattern, s.covered_by) for s in find_shadowed(routes)] == [
        (20, "m-x-5", ((5, "m-*-5"),)),
        (21, "m-[xy]-7", ((7, "m-*-7"),)),
    ]


def test_shadowing_of_prefixless_patterns() -> None:
    routes = [["*haiku*"], ["*-haiku-*"], ["claude-haiku-5"], ["*opus*"]]
    assert [(s.route, s.covered_by) for s in find_shadowed(routes)] == [
        (1, ((0, "*haiku*"),)),
        (2, ((0, "*haiku*"),)),
    ]



# --- routes with `when` -------------------------------------------------------------------------

SUB = Conditions(request_class=frozenset({"subagent"}))
SUB_OR_COMPACT = Conditions(request_class=frozenset({"subagent", "compaction"}))
GENERAL = Conditions(frozenset({"subagent"}), ("general-*",))


@pytest.mark.parametrize(
    ("earlier", "later", "covers"),
    [
        (None, None, True),
        (None, SUB, True),
        (SUB, None, False),  # the later route also takes main requests
        (SUB_OR_COMPACT, SUB, True),
        (SUB, SUB_OR_COMPACT, False),
        (Conditions(request_class=frozenset(REQUEST_CLASSES)), None, True),  # every class: always holds
        (GENERAL, Conditions(frozenset({"subagent"}), ("General-Purpose", "general-x*")), True),
        (GENERAL, Conditions(frozenset({"subagent"}), ("general*",)), False),  # "general" alone escapes
        (GENERAL, SUB, False),  # the later one also takes requests without an agent type
        (Conditions(agent_type=("a*", "b*")), Conditions(agent_type=("[ab]x",)), True),  # by a union
        (Conditions(agent_type=("*",)), Conditions(agent_type=("x",), server_tools=True), True),
        (Conditions(server_tools=True), Conditions(request_class=frozenset({"main"}), server_tools=True), True),
        (Conditions(server_tools=True), Conditions(server_tools=False), False),
        (Conditions(server_tools=False), SUB, False),
    ],
)
def test_conditions_cover(earlier: Conditions | None, later: Conditions | None, covers: bool) -> None:
    assert conditions_cover(earlier, later) is covers


def test_a_conditional_route_does_not_shadow_an_unconditional_one() -> None:
    assert find_shadowed([["claude-*"], ["claude-haiku-*"]], [SUB, None]) == []
    assert find_shadowed([["glm-4.7"], ["glm-4.7"]], [SUB, None]) == []
    assert find_shadowed([["*"], ["x"]], [SUB, SUB_OR_COMPACT]) == []


def test_a_conditional_route_shadows_when_its_conditions_cover_the_later_ones() -> None:
    assert find_shadowed([["claude-*"], ["claude-haiku-*"]], [SUB_OR_COMPACT, SUB]) == [
        Shadowed(1, 0, "claude-haiku-*", ((0, "claude-*"),))
    ]
    assert find_shadowed([["claude-*"], ["claude-haiku-*"]], [None, SUB]) == [
        Shadowed(1, 0, "claude-haiku-*", ((0, "claude-*"),))
    ]


def test_a_route_own_patterns_shadow_each_other_whatever_its_conditions() -> None:
    assert find_shadowed([["claude-*", "claude-haiku-*"]], [SUB]) == [
        Shadowed(0, 1, "claude-haiku-*", ((0, "claude-*"),))
    ]


def test_an_exact_name_looks_past_an_earlier_route_that_does_not_cover_it() -> None:
    # The first earlier route taking "glm-4.7" is conditional; the glob after it covers it.
    found = find_shadowed([["glm-4.7"], ["glm-*"], ["glm-4.7"]], [SUB, None, None])
    assert found == [Shadowed(2, 0, "glm-4.7", ((1, "glm-*"),))]
    found = find_shadowed([["glm-4.7"], ["GLM-4.7"], ["glm-4.7"]], [SUB, SUB_OR_COMPACT, SUB])
    assert [(s.route, s.covered_by) for s in found] == [(2, ((0, "glm-4.7"),))]


def test_only_covering_routes_join_a_union() -> None:
    # "a[bc]*" is covered by ab* and ac* together, but ac* applies to subagents only.
    assert find_shadowed([["ab*"], ["ac*"], ["a[bc]*"]], [None, SUB, None]) == []
    assert find_shadowed([["ab*"], ["ac*"], ["a[bc]*"]], [None, SUB_OR_COMPACT, SUB]) == [
        Shadowed(2, 0, "a[bc]*", ((0, "ab*"), (1, "ac*")))
    ]


def test_no_conditions_at_all_is_the_model_only_analysis() -> None:
    routes = [["ab*"], ["ac*"], ["a[bc]*"], ["glm-4.7"], ["GLM-4.7"]]
    assert find_shadowed(routes, [None] * 5) == find_shadowed(routes)


_FACTS_SAMPLE = [
    RequestFacts(c, a, s) for c in ("main", "subagent", "unknown") for a in (None, "a", "b-") for s in (False, True)
]
_CONDITIONS = (
    st.tuples(
        st.none() | st.frozensets(st.sampled_from(["main", "subagent", "unknown"]), min_size=1, max_size=2),
        st.none() | st.lists(st.sampled_from(["*", "a", "b*", "[ab]*", "?"]), min_size=1, max_size=2).map(tuple),
        st.none() | st.booleans(),
    )
    .filter(lambda given: given != (None, None, None))
    .map(lambda given: Conditions(*given))
)


@settings(max_examples=150, deadline=None)
@given(
    routes=st.lists(
        st.tuples(
            st.lists(st.sampled_from(["*", "a*", "ab", "a?", "[ab]*"]) | st.text(alphabet=_ALPHABET + "*?", min_size=1, max_size=3), min_size=1, max_size=2),
            st.none() | _CONDITIONS,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_every_shadowed_pattern_with_conditions_is_really_covered(
    routes: list[tuple[list[str], Conditions | None]],
) -> None:
    patterns = [p for p, _ in routes]
    when = [w for _, w in routes]
    names = _names(3)
    for s in find_shadowed(patterns, when):
        later = when[s.route]
        for facts in _FACTS_SAMPLE:
            if later is not None and not later.holds(facts):
                continue
            for name in names:
                if fnmatch.fnmatchcase(name, s.pattern):
                    assert any(
                        fnmatch.fnmatchcase(name, p) and (when[r] is None or when[r].holds(facts))  # type: ignore[union-attr]
                        for r, p in s.covered_by
                    ), (s, name, facts)
