"""rules.patterns: what a glob means (glob characters, catch-alls, literal prefix and suffix, regexes)."""

from __future__ import annotations

from rules.matching import Matcher
from rules.patterns import (
    glob_regex,
    is_catch_all,
    is_glob,
    literal_prefix,
    literal_suffix,
)


def matches(pattern: str, name: str) -> bool:
    return Matcher([[pattern]]).resolve(name) == 0


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



def test_literal_suffix_is_the_literal_tail() -> None:
    assert literal_suffix("*-Tag-7") == "-tag-7"
    assert literal_suffix("*haiku*") == ""
    assert literal_suffix("a[bc]d") == "d"
    assert literal_suffix("*ab[") == "ab["  # an unclosed "[" is a literal


