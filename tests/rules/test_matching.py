"""rules.matching: glob compilation, first-match resolution, the cache, and the shadowing check."""

from __future__ import annotations

import fnmatch
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import matching
from rules.matching import (
    Matcher,
    Shadowed,
    find_shadowed,
    glob_regex,
    is_catch_all,
    is_glob,
    literal_prefix,
)


def first(routes: list[list[str]], model: str) -> int:
    return Matcher(routes).resolve(model)


def matches(pattern: str, name: str) -> bool:
    return Matcher([[pattern]]).resolve(name) == 0


# --- helpers ------------------------------------------------------------------------------

def test_is_glob_sees_star_question_mark_and_bracket() -> None:
    assert is_glob("claude-*")
    assert is_glob("glm-4.?")
    assert is_glob("glm-4.[57]")
    assert is_glob("abc[")  # an unclosed bracket still makes it a glob (a literal "[" in it)
    assert not is_glob("glm-4.7")
    assert not is_glob("claude-sonnet-4-5-20250929")


def test_is_catch_all_only_for_stars() -> None:
    assert is_catch_all("*")
    assert is_catch_all("***")
    assert not is_catch_all("")
    assert not is_catch_all("*?")
    assert not is_catch_all("a*")


def test_literal_prefix_stops_at_first_glob_character_and_lowercases() -> None:
    assert literal_prefix("Claude-Haiku-*") == "claude-haiku-"
    assert literal_prefix("glm-4.[57]") == "glm-4."
    assert literal_prefix("a?b*") == "a"
    assert literal_prefix("*haiku*") == ""
    assert literal_prefix("glm-4.7") == "glm-4.7"


def test_glob_regex_escapes_regex_metacharacters() -> None:
    assert glob_regex("a.b+c(d)") == r"a\.b\+c\(d\)"
    assert glob_regex("A*") == "a.*"


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


# --- buckets by prefix and by suffix ------------------------------------------------------------

def test_literal_suffix_is_the_literal_tail() -> None:
    assert matching.literal_suffix("*-Tag-7") == "-tag-7"
    assert matching.literal_suffix("*haiku*") == ""
    assert matching.literal_suffix("a[bc]d") == "d"
    assert matching.literal_suffix("*ab[") == "ab["  # an unclosed "[" is a literal


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
