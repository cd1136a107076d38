"""schemas/routes.schema.json, its compiled form (rules.fast_schema) and its wording (rules.schema_messages)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import schemas
from rules.conditions import REQUEST_CLASSES
from rules.fast_schema import compile_schema
from rules.loader import _validators  # the loader's own pair: the reference and the compiled check
from rules.model import QUOTA_WINDOWS
from rules.schema_messages import did_you_mean, expected, kind, show
from schemas import SCHEMA_FILE, load_schema, schema_text

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

DATA = Path(__file__).resolve().parents[1] / "data"


def nodes(schema: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema, with a JSON pointer-ish name for messages."""
    if isinstance(schema, dict):
        yield where, schema
        for key, value in schema.items():
            if isinstance(value, dict) and key in ("properties", "$defs"):
                for name, sub in value.items():
                    yield from nodes(sub, f"{where}/{key}/{name}")
            elif isinstance(value, list):
                for i, sub in enumerate(value):
                    yield from nodes(sub, f"{where}/{key}/{i}")
            else:
                yield from nodes(value, f"{where}/{key}")


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**resolve(schema, schema["$defs"][ref.split("/")[-1]]), **{k: v for k, v in node.items() if k != "$ref"}}
    return node


# --- the schema itself ----------------------------------------------------------------------

def test_schema_is_a_valid_2020_12_schema() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_every_property_has_a_description() -> None:
    schema = load_schema()
    missing = [
        f"{where}/properties/{name}"
        for where, node in nodes(schema)
        for name, sub in node.get("properties", {}).items()
        if not resolve(schema, sub).get("description", "").strip()
    ]
    assert missing == []


def test_every_table_refuses_unknown_keys() -> None:
    schema = load_schema()
    for where, node in nodes(schema):
        if node.get("type") == "object":
            # A table with named keys is closed; a map (providers, headers) types its values.
            extra = node.get("additionalProperties")
            assert extra is False if "properties" in node else isinstance(extra, dict), where


def test_the_top_level_requires_version_providers_and_routes() -> None:
    assert set(load_schema()["required"]) == {"version", "providers", "route"}


def test_schema_is_package_data_loaded_once() -> None:
    shipped = resources.files("schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    assert schema_text() == shipped
    assert load_schema() == json.loads(shipped)
    assert load_schema() is load_schema()


def test_schemas_exports_exactly_its_public_names() -> None:
    assert sorted(schemas.__all__) == ["SCHEMA_FILE", "load_schema", "schema_text"]
    assert all(hasattr(schemas, name) for name in schemas.__all__)


# --- the compiled check ---------------------------------------------------------------------

def test_compile_refuses_a_keyword_it_does_not_implement() -> None:
    with pytest.raises(ValueError, match="contains"):
        compile_schema({"type": "array", "contains": {"const": 1}})


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"type": "integer"}, [1, -5], [1.0, True, "1", math.nan]),
        ({"type": "number", "exclusiveMinimum": 0}, [0.5, 3], [0, -1.0, math.inf, math.nan, False]),
        ({"const": True}, [True], [1, "true"]),
        ({"const": 1}, [1, 1.0], [True]),
        ({"enum": ["a", "b"]}, ["a"], ["c", 1, None]),
        ({"type": "array", "uniqueItems": True}, [[1, "1", True], [[1], [2]]], [[1, 1.0], [True, True], [{"a": 1}, {"a": 1}]]),
        ({"pattern": "^a"}, ["ab", 5], ["ba"]),
        ({"minProperties": 1, "maxProperties": 1}, [{"a": 1}, "x"], [{}, {"a": 1, "b": 2}]),
        ({"dependentRequired": {"a": ["b"]}}, [{"b": 1}, {"a": 1, "b": 2}], [{"a": 1}]),
        ({"propertyNames": {"pattern": "^[a-z]+$"}}, [{"ab": 1}], [{"a b": 1}]),
        ({"oneOf": [{"type": "string"}, {"minLength": 2}]}, ["a", 5], ["ab"]),
        ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, [{}, {"a": 1, "b": 2}, {"b": 1}, "x"], [{"a": 1}]),
        ({"if": {"required": ["a"]}, "else": {"required": ["b"]}}, [{"a": 1}, {"b": 1}, 5], [{}, {"c": 1}]),
        (
            {"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"type": "integer"}},
            ["ab", 3],
            ["a", 1.5, None],
        ),
        ({"anyOf": [{"const": "a", "description": "A"}, {"const": "b"}]}, ["a", "b"], ["c", 1]),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False},
            [{"a": "x"}],
            [{"a": 1}, {}, {"a": "x", "b": 1}, []],
        ),
    ],
)
def test_compiled_keywords_judge_like_json_schema(schema: dict[str, Any], good: list[Any], bad: list[Any]) -> None:
    check = compile_schema(schema)
    reference = _validators()[0].__class__(schema)
    for value in good:
        assert check(value) and reference.is_valid(value), value
    for value in bad:
        assert not check(value) and not reference.is_valid(value), value


def fixture_documents() -> list[tuple[str, Any]]:
    docs = []
    for path in sorted(DATA.glob("*/*.toml")):
        try:
            docs.append((path.stem, tomllib.loads(path.read_bytes().decode("utf-8-sig"))))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
    return docs


@pytest.mark.parametrize(("name", "doc"), fixture_documents(), ids=[n for n, _ in fixture_documents()])
def test_compiled_check_agrees_with_jsonschema_on_every_fixture(name: str, doc: Any) -> None:
    validator, is_valid = _validators()
    assert is_valid(doc) == validator.is_valid(doc)


def _with_route(route_extra: dict[str, Any], target_extra: dict[str, Any]) -> dict[str, Any]:
    target = {"provider": "a", **target_extra}
    route = {"match": "*", "to": [target, {"provider": "a"}], **route_extra}
    return {"version": 1, "providers": {"a": {"base_url": "https://a", "key": {"client": True}}}, "route": [route]}


@pytest.mark.parametrize(
    ("when", "valid"),
    [
        ({"request_class": "main"}, True),
        ({"request_class": ["subagent", "compaction"], "agent_type": "general-*", "server_tools": False}, True),
        ({"agent_type": ["a", "b*"]}, True),
        ({"server_tools": True}, True),
        ({}, False),
        ({"request_class": "subagents"}, False),
        ({"request_class": "Main"}, False),
        ({"request_class": []}, False),
        ({"request_class": ["main", "main"]}, False),
        ({"request_class": ["main", 1]}, False),
        ({"agent_type": ""}, False),
        ({"agent_type": []}, False),
        ({"agent_type": ["a", 1]}, False),
        ({"server_tools": 1}, False),
        ({"server_tools": "true"}, False),
        ({"request_type": "main"}, False),
        ("main", False),
    ],
)
def test_when_judged_alike_by_both_checks(when: Any, valid: bool) -> None:
    validator, is_valid = _validators()
    doc = _with_route({"when": when}, {})
    assert is_valid(doc) is valid
    assert validator.is_valid(doc) is valid


@pytest.mark.parametrize(
    ("spill_at", "valid"),
    [
        ({"7d": 0.85}, True),
        ({"5h": 0.95, "7d": 0.85, "7d_oi": 1}, True),
        ({"7d": 1.0}, True),
        ({"7d": 1e-9}, True),
        ({}, False),
        ({"7d": 0}, False),
        ({"7d": 0.0}, False),
        ({"7d": -0.5}, False),
        ({"7d": 1.0000001}, False),
        ({"7d": 85}, False),
        ({"7d": True}, False),
        ({"7d": math.nan}, False),
        ({"7d": math.inf}, False),
        ({"7d": "0.85"}, False),
        ({"7D": 0.85}, False),
        ({"overage": 0.5}, False),
        (0.85, False),
    ],
)
def test_spill_at_judged_alike_by_both_checks(spill_at: Any, valid: bool) -> None:
    validator, is_valid = _validators()
    doc = _with_route({}, {"spill_at": spill_at})
    assert is_valid(doc) is valid
    assert validator.is_valid(doc) is valid


def test_request_classes_in_the_schema_are_the_rule_engines() -> None:
    assert load_schema()["$defs"]["requestClass"]["enum"] == list(REQUEST_CLASSES)
    assert list(load_schema()["$defs"]["spillAt"]["properties"]) == list(QUOTA_WINDOWS)


# --- wording --------------------------------------------------------------------------------

def test_show_spells_values_as_toml_does() -> None:
    assert show("zai") == "'zai'"
    assert show("it's") == "'it\\'s'"
    assert show("a\nb") == "'a\\nb'"
    assert show(True) == "true"
    assert show(8082) == "8082"
    assert show(1.5) == "1.5"
    assert show(math.nan) == "nan"
    assert show(-math.inf) == "-inf"
    assert show({}) == "an empty table"
    assert show({"a": 1}) == "a table"
    assert show([]) == "an empty list"
    assert show(date(2025, 1, 2)) == "2025-01-02"
    assert show("x" * 100) == "'" + "x" * 57 + "...'"


def test_kind_names_toml_types() -> None:
    assert [kind(v) for v in ("", True, 1, 1.0, {}, [], datetime(2025, 1, 1), date(2025, 1, 1), time(1, 2))] == [
        "a string", "a boolean", "an integer", "a float", "a table", "a list", "a date-time", "a date", "a time",
    ]


def test_did_you_mean_suggests_only_close_names() -> None:
    assert did_you_mean("timout", ["base_url", "timeout_s"]) == "timeout_s"
    assert did_you_mean("Anthropic", ["anthropic", "zai"]) == "anthropic"
    assert did_you_mean("openai", ["anthropic", "zai"]) is None


def test_expected_phrases_come_from_the_schema() -> None:
    assert expected({"type": "integer", "minimum": 1, "maximum": 65535}) == "an integer from 1 to 65535"
    assert expected({"type": "integer", "minimum": 0}) == "an integer of at least 0"
    assert expected({"type": "number", "exclusiveMinimum": 0, "maximum": 10}) == "a number greater than 0 and at most 10"
    assert expected({"enum": ["keep", "merge"]}) == "'keep' or 'merge'"
    assert expected({"anyOf": [{"enum": ["a", "b"]}, {"title": "a list"}]}) == "'a', 'b', or a list"
    assert expected({"title": "a provider name", "type": "string"}) == "a provider name"
