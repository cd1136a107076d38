"""The JSON Schema compiled to a plain Python predicate: is a document valid, yes or no.

jsonschema takes about 150 ms to check a 1,000-route file (each keyword is a dynamic
dispatch, each `anyOf` branch builds error objects), while a config should load in well under
100 ms. Almost every config that is loaded is valid, so the loader asks this predicate first
and runs jsonschema only when the answer is no, to word the errors. The schema stays the one
source of truth: this compiles it, keyword by keyword, and refuses keywords it does not know,
so a schema change cannot silently weaken the check. Tests compare its verdicts with
jsonschema's on random documents.

Types follow the loader's type checker: an integer is an ``int`` that is not a ``bool``, and a
number is a finite ``int`` or ``float`` (TOML has ``nan`` and ``inf``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Check", "compile_schema"]

Check = Callable[[Any], bool]

# Keywords that only annotate (editors show them); they never change validity.
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "default", "examples", "$defs"})
# Keywords read by another keyword's maker: `then` and `else` belong to `if`.
_READ_BY_IF = frozenset({"then", "else"})


def compile_schema(schema: Mapping[str, Any] | bool) -> Check:
    """A predicate equivalent to validating against ``schema`` (with local ``$ref``s inlined).

    Raises ``ValueError`` for a keyword it does not implement.
    """
    if schema is True:
        return _always
    if schema is False:
        return _never
    checks: list[Check] = []
    if schema.get("type") == "object":
        # Tables are most of a config: one pass over the keys for all the table keywords.
        checks.append(_table(schema))
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS or keyword in _READ_BY_IF or (checks and keyword in _TABLE_KEYWORDS):
            continue
        make = _KEYWORDS.get(keyword)
        if make is None:
            raise ValueError(f"fast_schema does not implement the keyword {keyword!r}; add it")
        checks.append(make(value, schema))
    return _all(checks)


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)

    def check(value: Any) -> bool:
        for c in checks:
            if not c(value):
                return False
        return True

    return check


_TABLE_KEYWORDS = frozenset({"type", "properties", "additionalProperties", "required"})


def _table(schema: Mapping[str, Any]) -> Check:
    """``type: object`` with its properties, additionalProperties and required, in one closure."""
    if "patternProperties" in schema:
        raise ValueError("fast_schema does not implement patternProperties; add it")
    properties = {name: compile_schema(sub) for name, sub in schema.get("properties", {}).items()}
    extra = schema.get("additionalProperties", True)
    extra_check = None if extra is True or extra is False else compile_schema(extra)
    closed = extra is False
    required = tuple(schema.get("required", ()))

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        for name, item in value.items():
            sub = properties.get(name)
            if sub is not None:
                if not sub(item):
                    return False
            elif closed or (extra_check is not None and not extra_check(item)):
                return False
        for name in required:
            if name not in value:
                return False
        return True

    return check


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


# --- types and equality, as the loader's validator sees them ------------------------------

def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": _is_integer,
    "number": _is_number,
    "null": lambda v: v is None,
}


def _equal(a: Any, b: Any) -> bool:
    """JSON Schema equality: ``true`` is not ``1``; ``1`` is ``1.0``; containers element-wise."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, list) or isinstance(b, list):
        return (
            isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
            and all(_equal(x, y) for x, y in zip(a, b))
        )
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
            and all(_equal(a[k], b[k]) for k in a)
        )
    return bool(a == b)


def _unique(items: list[Any]) -> bool:
    seen: set[tuple[str, Any]] = set()
    rest: list[Any] = []
    for item in items:
        if isinstance(item, bool):
            key: tuple[str, Any] = ("bool", item)
        elif isinstance(item, (int, float)):
            key = ("number", item)  # 1 and 1.0 are the same value here, as in JSON Schema
        elif isinstance(item, str):
            key = ("string", item)
        else:
            if any(_equal(item, other) for other in rest):
                return False
            rest.append(item)
            continue
        if key in seen:
            return False
        seen.add(key)
    return True


# --- keywords -----------------------------------------------------------------------------
# Each maker gets the keyword's value and its schema, and returns a check of one instance. As
# in JSON Schema, a keyword about one type says nothing about instances of another type.

def _type(value: Any, schema: Mapping[str, Any]) -> Check:
    names = [value] if isinstance(value, str) else list(value)
    checks = [_TYPES[n] for n in names]
    if len(checks) == 1:
        return checks[0]
    return lambda v: any(c(v) for c in checks)


def _const(value: Any, schema: Mapping[str, Any]) -> Check:
    return lambda v: _equal(v, value)


def _enum(value: Any, schema: Mapping[str, Any]) -> Check:
    if all(isinstance(e, str) for e in value):
        allowed = frozenset(value)
        return lambda v: isinstance(v, str) and v in allowed
    return lambda v: any(_equal(v, e) for e in value)


def _properties(value: Mapping[str, Any], schema: Mapping[str, Any]) -> Check:
    checks = {name: compile_schema(sub) for name, sub in value.items()}

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for name, item in v.items():
            sub = checks.get(name)
            if sub is not None and not sub(item):
                return False
        return True

    return check


def _additional_properties(value: Any, schema: Mapping[str, Any]) -> Check:
    if "patternProperties" in schema:
        raise ValueError("fast_schema does not implement patternProperties; add it")
    known = frozenset(schema.get("properties", {}))
    sub = compile_schema(value)

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        return all(sub(item) for name, item in v.items() if name not in known)

    return check


def _required(value: list[str], schema: Mapping[str, Any]) -> Check:
    return lambda v: not isinstance(v, dict) or all(name in v for name in value)


def _dependent_required(value: Mapping[str, list[str]], schema: Mapping[str, Any]) -> Check:
    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        return all(need in v for key, needs in value.items() if key in v for need in needs)

    return check


def _property_names(value: Any, schema: Mapping[str, Any]) -> Check:
    sub = compile_schema(value)
    return lambda v: not isinstance(v, dict) or all(sub(name) for name in v)


def _min_properties(value: int, schema: Mapping[str, Any]) -> Check:
    return lambda v: not isinstance(v, dict) or len(v) >= value


def _max_properties(value: int, schema: Mapping[str, Any]) -> Check:
    return lambda v: not isinstance(v, dict) or len(v) <= value


def _items(value: Any, schema: Mapping[str, Any]) -> Check:
    if "prefixItems" in schema:
        raise ValueError("fast_schema does not implement prefixItems; add it")
    sub = compile_schema(value)

    def check(v: Any) -> bool:
        if isinstance(v, list):
            for item in v:
                if not sub(item):
                    return False
        return True

    return check


def _min_items(value: int, schema: Mapping[str, Any]) -> Check:
    return lambda v: not isinstance(v, list) or len(v) >= value


def _max_items(value: int, schema: Mapping[str, Any]) -> Check:
    return lambda v: not isinstance(v, list) or len(v) <= value


def _unique_items(value: bool, schema: Mapping[str, Any]) -> Check:
    if not value:
        return _always
    return lambda v: not isinstance(v, list) or _unique(v)


def _min_length(value: int, schema: Mapping[str, Any]) -> Check:
    return lambda v: not isinstance(v, str) or len(v) >= value


def _max_length(value: int, schema: Mapping[str, Any]) -> Check:
    return lambda v: not isinstance(v, str) or len(v) <= value


def _pattern(value: str, schema: Mapping[str, Any]) -> Check:
    search = re.compile(value).search  # JSON Schema patterns are unanchored, as jsonschema does
    return lambda v: not isinstance(v, str) or search(v) is not None


def _bound(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Mapping[str, Any]], Check]:
    def make(value: Any, schema: Mapping[str, Any]) -> Check:
        return lambda v: not _is_number(v) or compare(v, value)

    return make


def _any_of(value: list[Any], schema: Mapping[str, Any]) -> Check:
    branches = [compile_schema(sub) for sub in value]

    def check(v: Any) -> bool:
        for branch in branches:
            if branch(v):
                return True
        return False

    return check


def _one_of(value: list[Any], schema: Mapping[str, Any]) -> Check:
    branches = [compile_schema(sub) for sub in value]
    return lambda v: sum(1 for branch in branches if branch(v)) == 1


def _if(value: Any, schema: Mapping[str, Any]) -> Check:
    # As in JSON Schema: `then` applies where `if` holds, `else` where it does not; absent, true.
    condition = compile_schema(value)
    then = compile_schema(schema.get("then", True))
    otherwise = compile_schema(schema.get("else", True))
    return lambda v: then(v) if condition(v) else otherwise(v)


def _not(value: Any, schema: Mapping[str, Any]) -> Check:
    sub = compile_schema(value)
    return lambda v: not sub(v)


_KEYWORDS: dict[str, Callable[[Any, Mapping[str, Any]], Check]] = {
    "type": _type,
    "const": _const,
    "enum": _enum,
    "properties": _properties,
    "additionalProperties": _additional_properties,
    "required": _required,
    "dependentRequired": _dependent_required,
    "propertyNames": _property_names,
    "minProperties": _min_properties,
    "maxProperties": _max_properties,
    "items": _items,
    "minItems": _min_items,
    "maxItems": _max_items,
    "uniqueItems": _unique_items,
    "minLength": _min_length,
    "maxLength": _max_length,
    "pattern": _pattern,
    "minimum": _bound(lambda v, bound: v >= bound),
    "maximum": _bound(lambda v, bound: v <= bound),
    "exclusiveMinimum": _bound(lambda v, bound: v > bound),
    "exclusiveMaximum": _bound(lambda v, bound: v < bound),
    "anyOf": _any_of,
    "oneOf": _one_of,
    "if": _if,
    "not": _not,
}
