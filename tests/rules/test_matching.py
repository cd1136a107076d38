"""rules.matching: first-match resolution, route order, and the cache."""

from __future__ import annotations

import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import matching
from rules.matching import Matcher


def first(routes: list[list[str]], model: str) -> int:
    return Matcher(routes).resolve(model)


def matches(pattern: str, name: str) -> bool:
    return Matcher([[pattern]]).resolve(name) == 0



# --- single patterns ----------------------------------------------------------------------

def test_exact_name_matches_the_whole_name_only() -> None:
    assert matches("glm-4.7", "glm-4.7")
    assert not matches("glm-4.7", "glm-4.7-air")
    assert not matches("glm-4.7", "x-glm-4.7")
    assert not matches("glm-4.7", "glm-4x7")  # "." is not a wildcard


def test_matching_is_case_insensitive_both_ways() -> None:
    assert matches("Claude-Haiku-*", "claude-haiku-5-5")
    assert matches("claude-haiku-*", "CLAUDE-HAIKU-5-5")
    assert matches("GLM-4.7", "glm-4.7")
    assert matches("glm-4.[a-c]", "GLM-4.B")
    assert matches("glm-4.[A-C]", "glm-4.b")


def test_star_matches_any_run_including_empty_over_the_whole_name() -> None:
    assert matches("claude-*", "claude-")
    assert matches("claude-*", "claude-opus-5-5")
    assert matches("*haiku*", "claude-3-5-haiku-latest")
    assert matches("*haiku*", "haiku")
    assert not matches("claude-*", "x-claude-1")
    assert matches("a**b", "ab")
    assert matches("*", "")
    assert matches("*", "any/thing.with\nodd characters")


def test_question_mark_matches_exactly_one_character() -> None:
    assert matches("glm-4.?", "glm-4.5")
    assert not matches("glm-4.?", "glm-4.")
    assert not matches("glm-4.?", "glm-4.55")
    assert matches("??", "ab")


def test_bracket_sets_ranges_and_negation() -> None:
    assert matches("glm-4.[57]", "glm-4.5")
    assert matches("glm-4.[57]", "glm-4.7")
    assert not matches("glm-4.[57]", "glm-4.6")
    assert matches("v[0-9]", "v3")
    assert not matches("v[0-9]", "vx")
    assert matches("v[!0-9]", "vx")
    assert not matches("v[!0-9]", "v3")
    assert not matches("v[!0-9]", "v")  # a negated set still takes one character
    assert matches("[]]", "]")  # "]" first in a set is a literal
    assert matches("[!]]", "a")
    assert not matches("[!]]", "]")
    assert matches("[a-]", "-")  # a trailing "-" is a literal
    assert not matches("[z-a]", "z")  # a reversed range matches nothing
    assert matches("[!z-a]", "q")  # ... and its negation anything


def test_unclosed_bracket_is_a_literal() -> None:
    assert matches("abc[", "abc[")
    assert matches("abc[d*", "ABC[defg")
    assert not matches("abc[d", "abcd")
    assert matches("[", "[")


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.text(alphabet="ab-![]*?A", max_size=7),
    name=st.text(alphabet="ab-![]A", max_size=6),
)
def test_single_pattern_agrees_with_fnmatch_on_lowercased_text(pattern: str, name: str) -> None:
    assert matches(pattern, name) == fnmatch.fnmatchcase(name.lower(), pattern.lower())


# --- route order --------------------------------------------------------------------------

def test_first_matching_route_wins() -> None:
    routes = [["claude-haiku-*"], ["claude-*"], ["*"]]
    assert first(routes, "claude-haiku-5-5") == 0
    assert first(routes, "claude-opus-5-5") == 1
    assert first(routes, "glm-4.7") == 2


def test_exact_and_glob_precedence_follows_route_order() -> None:
    # A glob in an earlier route beats an exact name in a later one ...
    assert first([["glm-*"], ["glm-4.7"]], "glm-4.7") == 0
    # ... and an exact name in an earlier route beats a glob in a later one.
    assert first([["glm-4.7"], ["glm-*"]], "glm-4.7") == 0
    assert first([["glm-4.7"], ["glm-*"]], "glm-4.5") == 1
    # Within a route's list, any pattern counts for the route.
    assert first([["x", "glm-*"], ["glm-4.7"]], "glm-4.7") == 0


def test_duplicate_exact_name_goes_to_the_first_route_whatever_the_case() -> None:
    assert first([["GLM-4.7"], ["glm-4.7"]], "glm-4.7") == 0


def test_globs_with_different_prefixes_keep_route_order() -> None:
    # Buckets by literal prefix must not change which route comes first.
    routes = [["claude-*-5"], ["claude-haiku-*"], ["c*"]]
    assert first(routes, "claude-haiku-5") == 0
    assert first(routes, "claude-haiku-4") == 1
    assert first(routes, "cx") == 2
    routes = [["claude-haiku-*"], ["claude-*-5"]]
    assert first(routes, "claude-haiku-5") == 0


def test_no_match_is_minus_one() -> None:
    assert first([["claude-*"], ["glm-4.7"]], "gpt-5") == -1
    assert first([], "anything") == -1


@settings(max_examples=200, deadline=None)
@given(
    routes=st.lists(
        st.lists(st.text(alphabet="ab-[]!*?", min_size=1, max_size=5), min_size=1, max_size=3),
        max_size=6,
    ),
    name=st.text(alphabet="ab-[]!", max_size=5),
)
def test_resolve_is_the_first_route_fnmatch_accepts(routes: list[list[str]], name: str) -> None:
    expected = next(
        (i for i, ps in enumerate(routes) if any(fnmatch.fnmatchcase(name, p) for p in ps)), -1
    )
    assert first(routes, name) == expected


# --- the cache ----------------------------------------------------------------------------

def test_cache_answers_repeat_lookups_with_the_same_result() -> None:
    m = Matcher([["claude-haiku-*"], ["glm-4.7"]])
    assert m.resolve("claude-haiku-5-5") == 0
    assert m._cache["claude-haiku-5-5"] == 0
    assert m.resolve("claude-haiku-5-5") == 0
    assert m.resolve("GLM-4.7") == 1
    assert m._cache["GLM-4.7"] == 1  # keyed by the name as sent


def test_cache_remembers_misses() -> None:
    m = Matcher([["glm-4.7"]])
    assert m.resolve("gpt-5") == -1
    assert m._cache["gpt-5"] == -1
    assert m.resolve("gpt-5") == -1


def test_cache_stays_bounded_and_correct_under_a_flood_of_names() -> None:
    m = Matcher([["m-1*"], ["m-*"]])
    for i in range(matching._CACHE_LIMIT * 2 + 10):
        assert m.resolve(f"m-{i}") == (0 if str(i).startswith("1") else 1)
        assert len(m._cache) <= matching._CACHE_LIMIT
    assert m.resolve("m-1") == 0



# --- buckets by prefix and by suffix ------------------------------------------------------------

def test_prefixless_and_prefixed_globs_keep_route_order() -> None:
    assert first([["*-b"], ["a*"]], "a-b") == 0
    assert first([["a*"], ["*-b"]], "a-b") == 0
    assert first([["x*"], ["*-b"], ["*b"], ["*"]], "a-b") == 1
    assert first([["x*"], ["*b"], ["*-b"]], "A-B") == 1
    assert first([["*-b"]], "b") == -1  # the suffix is longer than the name


def test_find_answers_like_resolve_without_filling_the_cache() -> None:
    m = Matcher([["claude-*"], ["*-b"], ["glm-4.7"]])
    assert [m.find(n) for n in ("claude-x", "x-b", "GLM-4.7", "gpt")] == [0, 1, 2, -1]
    assert m._cache == {}


