"""rules.locate: config paths and the lines they sit on."""

from __future__ import annotations

import sys

import pytest

from rules.locate import LineMap, format_path, scan

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def lines_of(text: str) -> LineMap:
    tomllib.loads(text)  # the locator only ever sees text tomllib accepted
    return LineMap(text)


# --- format_path ----------------------------------------------------------------------------

def test_format_path_uses_dots_and_zero_based_indexes() -> None:
    assert format_path(("route", 2, "to", 0, "provider")) == "route[2].to[0].provider"
    assert format_path(("providers", "zai", "key", 1, "env")) == "providers.zai.key[1].env"


def test_format_path_quotes_keys_that_are_not_bare() -> None:
    assert format_path(("providers", "z ai", "base_url")) == 'providers."z ai".base_url'
    assert format_path(("headers", 'say "hi"')) == 'headers."say \\"hi\\""'
    assert format_path(("headers", "a.b")) == 'headers."a.b"'


def test_format_path_of_the_root_is_empty() -> None:
    assert format_path(()) == ""


# --- tables, keys, arrays of tables -----------------------------------------------------------

TEXT = """\
version = 1

[server]
port = 8082

[providers.zai]
base_url = "https://api.z.ai/api/anthropic"
key = { env = "ZAI_API_KEY" }

[[route]]
name = "haiku"
match = "claude-haiku-*"
to = "zai"

[[route]]
name = "default"
match = "*"
to = [{ provider = "zai" }]
"""


def test_keys_and_table_headers_have_their_lines() -> None:
    lines = lines_of(TEXT)
    assert lines.line_of(("version",)) == 1
    assert lines.line_of(("server",)) == 3
    assert lines.line_of(("server", "port")) == 4
    assert lines.line_of(("providers", "zai")) == 6
    assert lines.line_of(("providers", "zai", "base_url")) == 7


def test_an_implicit_parent_table_is_where_it_is_first_mentioned() -> None:
    assert lines_of(TEXT).line_of(("providers",)) == 6


def test_arrays_of_tables_are_counted_per_index() -> None:
    lines = lines_of(TEXT)
    assert lines.line_of(("route", 0)) == 10
    assert lines.line_of(("route", 0, "match")) == 12
    assert lines.line_of(("route", 1)) == 15
    assert lines.line_of(("route", 1, "match")) == 17


def test_a_missing_key_points_at_its_table() -> None:
    lines = lines_of(TEXT)
    assert lines.line_of(("providers", "zai", "timeout_s")) == 6
    assert lines.line_of(("route", 1, "fallback_on")) == 15


def test_a_path_inside_a_one_line_value_is_the_line_of_its_key() -> None:
    lines = lines_of(TEXT)
    assert lines.line_of(("providers", "zai", "key", "env")) == 8
    assert lines.line_of(("route", 1, "to", 0, "provider")) == 18


def test_the_root_and_unknown_paths_fall_back_to_line_1() -> None:
    lines = lines_of(TEXT)
    assert lines.line_of(()) == 1
    assert lines.line_of(("nothing", "here")) == 1


def test_nested_arrays_of_tables_count_under_their_parent_element() -> None:
    text = """\
[[route]]
match = "a"
[[route.to]]
provider = "x"

[[route]]
match = "b"
[[route.to]]
provider = "y"
[[route.to]]
provider = "z"
model = "m"
"""
    lines = lines_of(text)
    assert lines.line_of(("route", 0, "to", 0, "provider")) == 4
    assert lines.line_of(("route", 1, "to", 0)) == 8
    assert lines.line_of(("route", 1, "to", 1, "model")) == 12


def test_a_sub_table_of_an_array_element_belongs_to_the_last_element() -> None:
    text = "[[a]]\nx = 1\n[[a]]\nx = 2\n[a.b]\ny = 3\n"
    assert lines_of(text).line_of(("a", 1, "b", "y")) == 6


def test_dotted_and_quoted_keys() -> None:
    text = """\
providers.zai.base_url = "https://x"
"providers" . 'zai' . "key" = { env = "K" }
[providers."z ai"]
"a.b" = 1
"esc\\u0041ped" = 2
"""
    lines = lines_of(text)
    assert lines.line_of(("providers", "zai", "base_url")) == 1
    assert lines.line_of(("providers", "zai", "key")) == 2
    assert lines.line_of(("providers", "z ai", "a.b")) == 4
    assert lines.line_of(("providers", "z ai", "escAped")) == 5


# --- values over several lines ----------------------------------------------------------------

def test_elements_of_a_multi_line_array_have_their_own_lines() -> None:
    text = """\
match = [
  "claude-haiku-*",    # a comment with ] and [ and "
  'glm-4.7',

  "x",
]
after = 1
"""
    lines = lines_of(text)
    assert lines.line_of(("match", 0)) == 2
    assert lines.line_of(("match", 1)) == 3
    assert lines.line_of(("match", 2)) == 5
    assert lines.line_of(("after",)) == 7


def test_inline_tables_inside_a_multi_line_array() -> None:
    text = """\
to = [
  { provider = "zai", model = "glm-4.7" },
  { provider = "anthropic" },
]
"""
    lines = lines_of(text)
    assert lines.line_of(("to", 1, "provider")) == 3
    assert lines.line_of(("to", 0, "model")) == 2


def test_nested_multi_line_arrays() -> None:
    text = "a = [\n  [\n    1,\n    2,\n  ],\n  [3],\n]\n"
    lines = lines_of(text)
    assert lines.line_of(("a", 0, 1)) == 4
    assert lines.line_of(("a", 1)) == 6


def test_multi_line_strings_do_not_fool_the_scanner() -> None:
    text = '''\
a = """
[[route]]
x = 1 # not a comment
"""
b = \'\'\'
[[route]]
\'\'\'
c = """two quotes before the end"""""
[[route]]
match = "*"
'''
    lines = lines_of(text)
    assert lines.line_of(("b",)) == 5
    assert lines.line_of(("c",)) == 8
    assert lines.line_of(("route", 0, "match")) == 10
    assert ("route", 1) not in scan(text)


def test_strings_with_brackets_quotes_and_hashes() -> None:
    text = """\
a = "[[route]] # \\" ]"
b = '[x] "#'
[[route]]
match = ["a]", "#b", '[c']
to = "x"
"""
    lines = lines_of(text)
    assert lines.line_of(("route", 0, "match")) == 4
    assert lines.line_of(("route", 0, "to")) == 5
    assert ("route", 1) not in scan(text)


def test_comments_and_blank_lines_between_statements() -> None:
    text = "# [[route]]\n\n   # [server]\n[server]  # trailing\n\n  port = 1   # c\n"
    lines = lines_of(text)
    assert lines.line_of(("server",)) == 4
    assert lines.line_of(("server", "port")) == 6
    assert ("route",) not in scan(text)


def test_windows_line_endings() -> None:
    text = "version = 1\r\n\r\n[server]\r\nport = 1\r\n"
    assert lines_of(text).line_of(("server", "port")) == 4


def test_date_times_with_spaces() -> None:
    text = "a = 1979-05-27 07:32:00Z\nb = [1979-05-27 07:32:00, 2]\nc = 3\n"
    lines = lines_of(text)
    assert lines.line_of(("c",)) == 3
    assert lines.line_of(("b", 1)) == 2


@pytest.mark.parametrize("text", ["[[[", 'a = "', "a = [1,\n", "= 1", "a = {", "\x00", "[a\n]"])
def test_scan_never_raises_on_text_that_is_not_toml(text: str) -> None:
    assert isinstance(scan(text), dict)
