"""rules.loader: the public functions, their contract, and the cases fixtures cannot show."""

from __future__ import annotations

import copy
import hashlib
import os
import sys
from pathlib import Path

import pytest

import rules.loader
from rules.conditions import Conditions, RequestFacts
from rules.errors import ConfigError
from rules.loader import check_bytes, compile_document, load_bytes, load_file
from rules.model import DEFAULT_FALLBACK_ON, ConfigSource, RuleSet

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

VALID = b"""\
version = 1

[providers.zai]
base_url = "https://api.z.ai/api/anthropic"
key = { env = "ZAI_API_KEY" }

[[route]]
match = "*"
to = "zai"
"""

DOC = {
    "version": 1,
    "providers": {"zai": {"base_url": "https://api.z.ai/api/anthropic/", "key": {"env": "ZAI_API_KEY"}}},
    "route": [{"name": "all", "match": "*", "to": [{"provider": "zai", "model": "glm-4.7"}]}],
}

# Errors and warnings on alternating lines: a literal key (warning, line 5), an unknown
# provider (error, line 9), an unused provider (warning, line 11), a bad header (error, line 14).
MIXED = b"""\
version = 1

[providers.zai]
base_url = "https://api.z.ai/api/anthropic"
key = { value = "sk-zai-0123456789abcdef" }

[[route]]
match = "*"
to = [{ provider = "zai" }, { provider = "zaii" }]

[providers.spare]
base_url = "https://spare.example.com"
key = { client = true }
headers = { host = "x" }
"""


def test_loader_exports_exactly_its_public_functions() -> None:
    assert sorted(rules.loader.__all__) == ["check_bytes", "compile_document", "load_bytes", "load_file"]


# --- load_bytes / load_file -----------------------------------------------------------------

def test_load_bytes_records_the_file_and_the_hash_of_its_bytes() -> None:
    rules = load_bytes(VALID, file="conf/routes.toml")
    assert rules.source == ConfigSource("file", "conf/routes.toml", hashlib.sha256(VALID).hexdigest())


def test_load_bytes_default_file_name() -> None:
    with pytest.raises(ConfigError) as caught:
        load_bytes(b"version = 2")
    assert caught.value.file == "routes.toml"


def test_env_none_means_no_environment_warnings() -> None:
    assert load_bytes(VALID).warnings == ()
    assert load_bytes(VALID, env={"ZAI_API_KEY": "k"}).warnings == ()
    (warning,) = load_bytes(VALID, env={}).warnings
    assert warning.severity == "warning"
    assert warning.render() == (
        "routes.toml:5: providers.zai.key.env: environment variable ZAI_API_KEY is not set "
        "(this key source yields nothing)"
    )


def test_errors_carry_only_errors_and_every_one_of_them() -> None:
    with pytest.raises(ConfigError) as caught:
        load_bytes(MIXED, file="m.toml")
    assert [(p.line, p.path) for p in caught.value.problems] == [
        (9, "route[0].to[1].provider"),
        (14, "providers.spare.headers.host"),
    ]
    assert all(p.severity == "error" for p in caught.value.problems)


def test_load_file_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_bytes(VALID)
    rules = load_file(path)
    assert rules.source.path == str(path)
    assert rules.resolve("claude-haiku-5-5") is not None


def test_load_file_names_a_missing_file_and_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert str(caught.value) == f"{path}: cannot read the config file: No such file or directory"


def test_load_file_names_a_directory_and_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_file(tmp_path)
    assert str(caught.value) == f"{tmp_path}: cannot read the config file: Is a directory"


def test_load_file_errors_are_located_in_that_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(VALID.replace(b'to = "zai"', b'to = "zaii"'))
    with pytest.raises(ConfigError) as caught:
        load_file(os.fspath(path))
    assert str(caught.value) == f"{path}:9: route[0].to: unknown provider 'zaii' (did you mean 'zai'? known: zai)"


# --- check_bytes ----------------------------------------------------------------------------

def test_check_bytes_returns_errors_and_warnings_in_line_order() -> None:
    rules, problems = check_bytes(MIXED, file="m.toml", env={})
    assert rules is None
    assert [(p.line, p.severity, p.path) for p in problems] == [
        (5, "warning", "providers.zai.key.value"),
        (9, "error", "route[0].to[1].provider"),
        (11, "warning", "providers.spare"),
        (14, "error", "providers.spare.headers.host"),
    ]


def test_check_bytes_of_a_valid_file_gives_the_rules_and_the_warnings() -> None:
    rules, problems = check_bytes(VALID, env={})
    assert isinstance(rules, RuleSet)
    assert problems == list(rules.warnings)
    assert [p.path for p in problems] == ["providers.zai.key.env"]


@pytest.mark.parametrize("data", [b"\xff\xfe", b"a = ", b"version = 2", b"", VALID + b"\n[[route]]\nmatch = 'x'\nto = 'zai'\n"])
def test_check_bytes_never_raises_config_error(data: bytes) -> None:
    rules, problems = check_bytes(data)
    assert rules is None
    assert problems and all(p.severity == "error" for p in problems)


# --- compile_document -----------------------------------------------------------------------

def test_compile_document_builds_from_a_parsed_document() -> None:
    rules = compile_document(DOC)
    (route,) = rules.routes
    assert route.name == "all" and route.fallback_on == DEFAULT_FALLBACK_ON
    assert rules.providers["zai"].base_url == "https://api.z.ai/api/anthropic"
    assert route.to[0].provider is rules.providers["zai"]
    assert rules.source == ConfigSource("file", "<config>")


def test_compile_document_keeps_the_given_source() -> None:
    rules = compile_document(DOC, file="<environment>", source=ConfigSource("env"))
    assert rules.source == ConfigSource("env")


def test_compile_document_does_not_change_the_document() -> None:
    before = copy.deepcopy(DOC)
    compile_document(DOC)
    assert DOC == before


def test_compile_document_runs_the_same_checks_without_lines() -> None:
    doc = copy.deepcopy(DOC)
    doc["route"][0]["to"] = "zaii"
    with pytest.raises(ConfigError) as caught:
        compile_document(doc, file="<environment>")
    assert str(caught.value) == "<environment>: route[0].to: unknown provider 'zaii' (did you mean 'zai'? known: zai)"
    assert caught.value.line is None


def test_compile_document_uses_text_for_lines() -> None:
    text = VALID.decode().replace('to = "zai"', 'to = "zaii"')
    with pytest.raises(ConfigError) as caught:
        compile_document(tomllib.loads(text), file="f.toml", text=text)
    assert caught.value.line == 9


def test_compile_document_refuses_a_document_that_is_not_a_table() -> None:
    with pytest.raises(ConfigError) as caught:
        compile_document(["version", 1])  # type: ignore[arg-type]
    assert caught.value.message == "the config must be a table of keys, not a single value"


def test_compile_document_reports_env_warnings_only_when_given_env() -> None:
    assert compile_document(DOC).warnings == ()
    assert [w.path for w in compile_document(DOC, env={}).warnings] == ["providers.zai.key.env"]


# --- edges of the input ---------------------------------------------------------------------

def test_a_utf8_byte_order_mark_is_accepted() -> None:
    assert load_bytes(b"\xef\xbb\xbf" + VALID).routes[0].match == ("*",)


def test_an_integer_too_long_for_python_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_bytes(b"version = " + b"1" * 5000)
    assert caught.value.message.startswith("invalid TOML: ")


def test_deep_nesting_is_a_config_error_not_a_crash() -> None:
    data = b"version = " + b"[" * 5000 + b"]" * 5000
    with pytest.raises(ConfigError):
        load_bytes(data)


def test_warnings_are_kept_on_the_ruleset_in_line_order() -> None:
    data = VALID.replace(b'match = "*"', b'match = ["*", "glm-4.7"]').replace(b'{ env = "ZAI_API_KEY" }', b'{ value = "sk-zai-0123456789abcdef" }')
    rules = load_bytes(data)
    assert isinstance(rules.warnings, tuple)
    assert [(w.line, w.path) for w in rules.warnings] == [(5, "providers.zai.key.value"), (8, "route[0].match[1]")]
def test_resolve_of_a_loaded_file_with_when() -> None:
    rules = load_bytes(
        b"""
version = 1
[providers.zai]
base_url = "https://z.example"
key = { client = true }
[[route]]
name = "helpers"
match = "claude-*"
when = { request_class = ["subagent", "compaction"] }
to = "zai"
[[route]]
name = "default"
match = "*"
to = "zai"
"""
    )
    compaction = RequestFacts.from_headers({"x-claude-code-request-class": "compaction"})
    assert rules.routes[0].when == Conditions(request_class=frozenset({"subagent", "compaction"}))
    assert rules.routes[1].when is None
    assert rules.resolve("claude-sonnet-5-5", compaction) is rules.routes[0]
    assert rules.resolve("claude-sonnet-5-5") is rules.routes[1]
    assert rules.conditional and not rules.uses_server_tools


def test_spill_at_is_kept_on_the_target_in_window_order() -> None:
    rules = load_bytes(
        b"""
version = 1
[providers.a]
base_url = "https://a.example"
key = { client = true }
[[route]]
match = "*"
to = [{ provider = "a", spill_at = { "7d_oi" = 1, "5h" = 0.95, "7d" = 0.85 } }, { provider = "a", model = "m" }]
"""
    )
    first, second = rules.routes[0].to
    assert first.spill_at == (("5h", 0.95), ("7d", 0.85), ("7d_oi", 1.0))
    assert isinstance(first.spill_at[2][1], float)
    assert second.spill_at == ()


