"""Schema violations as one human sentence each.

jsonschema's own messages are Python reprs (``'dropp' is not valid under any of the given
schemas``). Here every violation becomes a sentence that says what is wrong, quotes the bad
value and says what is allowed, worded from the schema itself (its ``title``, ``enum`` and
bounds), so the schema stays the one source of truth::

    expected an integer from 1 to 65535, got '8082' (a string)
    unknown key 'timout' (did you mean 'timeout_s'? allowed: base_url, key, ...)
    'dropp' is not allowed here (did you mean 'drop'? allowed: 'forward', 'drop', or a list of beta names)
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, cast

from jsonschema.exceptions import ValidationError

from rules.errors import Severity
from rules.locate import ConfigPath
from rules.redact import concealed, looks_secret, may_be_secret, pasted_key, safe_url

__all__ = ["Finding", "did_you_mean", "expected", "kind", "messages", "show"]

_MAX_SHOWN = 60


@dataclass(frozen=True, slots=True)
class Finding:
    """What is wrong (``message``) at a place in the document (``path``), not yet located."""

    path: ConfigPath
    message: str
    severity: Severity = "error"


# --- words for values ---------------------------------------------------------------------

def show(value: Any) -> str:
    """A value as a user wrote it in TOML: ``'text'``, ``42``, ``true``, ``a table``.

    A string that looks like a credential is never quoted whole: ``'sk-ant-...'``.
    """
    if isinstance(value, str):
        if looks_secret(value):
            return concealed(value)
        text = value if len(value) <= _MAX_SHOWN else value[: _MAX_SHOWN - 3] + "..."
        text = text.replace("\\", "\\\\").replace("'", "\\'")
        return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text) + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return "an empty table" if not value else "a table"
    if isinstance(value, (list, tuple)):
        return "an empty list" if not value else "a list"
    return "a value"  # tomllib gives nothing else; never show a Python repr


def kind(value: Any) -> str:
    """The TOML type of a value, with its article: ``a string``, ``an integer``."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a value"


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    """The option closest to a misspelled ``word``, if one is close enough to be a good guess."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if not close:
        lowered = {o.lower(): o for o in options}
        return lowered.get(word.lower())
    return close[0]


def _or_list(items: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b, or c``."""
    if len(items) <= 2:
        return " or ".join(items)
    return ", ".join(items[:-1]) + ", or " + items[-1]


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


# --- words for schemas --------------------------------------------------------------------

def expected(schema: Mapping[str, Any]) -> str:
    """What a schema accepts, as a noun phrase: ``an integer from 1 to 65535``."""
    title = schema.get("title")
    if isinstance(title, str):
        return title
    if "const" in schema:
        return show(schema["const"])
    if "enum" in schema:
        return _or_list([show(v) for v in schema["enum"]])
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        return _or_list(_forms(branches))
    types = schema.get("type")
    if types == "integer" or types == "number":
        return _bounded("an integer" if types == "integer" else "a number", schema)
    if types == "string":
        return "a non-empty string" if schema.get("minLength", 0) > 0 else "a string"
    if types == "boolean":
        return "true or false"
    if types == "array":
        return "a non-empty list" if schema.get("minItems", 0) > 0 else "a list"
    if types == "object":
        return "a table"
    return "a different value"


def _bounded(noun: str, schema: Mapping[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    above = schema.get("exclusiveMinimum")
    if low is not None and high is not None:
        return f"{noun} from {_number(low)} to {_number(high)}"
    parts = []
    if low is not None:
        parts.append(f"of at least {_number(low)}")
    if above is not None:
        parts.append(f"greater than {_number(above)}")
    if high is not None:
        parts.append(f"at most {_number(high)}")
    return " ".join([noun, " and ".join(parts)]) if parts else noun


def _forms(branches: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each accepted form of an anyOf, enum values listed one by one."""
    forms: list[str] = []
    for branch in branches:
        if "enum" in branch and "title" not in branch:
            forms.extend(show(v) for v in branch["enum"])
        else:
            forms.append(expected(branch))
    return forms


# --- the translation ----------------------------------------------------------------------

def messages(errors: Iterable[ValidationError]) -> list[Finding]:
    """One finding per thing wrong, in the order found, without duplicates.

    When a value has the wrong type, that is the only thing said about it (jsonschema also
    reports, say, that the number 5 is not one of the allowed strings).
    """
    found: list[tuple[Finding, bool]] = []
    for error in errors:
        found.extend(_translate(error, tuple(error.absolute_path)))
    mistyped = {finding.path for finding, is_type in found if is_type}
    seen: set[tuple[ConfigPath, str]] = set()
    out: list[Finding] = []
    for finding, is_type in found:
        key = (finding.path, finding.message)
        if (finding.path in mistyped and not is_type) or key in seen:
            continue
        seen.add(key)
        out.append(finding)
    return out


# Each translation is (finding, says_the_type_is_wrong).
_Said = tuple[Finding, bool]


def _translate(error: ValidationError, path: ConfigPath) -> list[_Said]:
    keyword = error.validator
    rule: Any = error.validator_value
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    value = error.instance

    pasted = pasted_key(path, value)
    if pasted is not None:
        # A key where a variable name, a path or a key source belongs: say so, whatever the
        # schema found wrong with it, and never quote it.
        return [(Finding(path, pasted), True)]

    if "propertyNames" in error.relative_schema_path:
        # jsonschema reports a bad key at its table; the key itself is the place.
        return [(Finding(path + (str(value),), f"invalid name {show(value)}: expected {expected(schema)}"), False)]

    if keyword == "additionalProperties" and rule is False and isinstance(value, Mapping):
        allowed = list(schema.get("properties", {}))
        out: list[_Said] = []
        for key in value:
            if key not in allowed:
                guess = did_you_mean(str(key), allowed)
                hint = f"did you mean {show(guess)}? " if guess else ""
                message = f"unknown key {show(key)} ({hint}allowed: {', '.join(allowed)})"
                out.append((Finding(path + (key,), message), False))
        return out

    if keyword == "required" and isinstance(value, Mapping):
        return [
            (Finding(path, f"missing required key {show(key)}"), False)
            for key in rule
            if key not in value
        ]

    if keyword == "dependentRequired" and isinstance(value, Mapping):
        return [
            (Finding(path + (key,), f"{show(key)} needs {show(need)} to be set too"), False)
            for key, needs in rule.items()
            if key in value
            for need in needs
            if need not in value
        ]

    if keyword in ("anyOf", "oneOf"):
        return _translate_choice(error, path)

    if keyword == "type":
        return [(Finding(path, f"expected {expected(schema)}, got {_got(value, path)}"), True)]

    if keyword in ("enum", "const"):
        allowed = [expected(schema)] if "title" in schema else _forms([schema])
        return [_not_allowed(value, allowed, path)]

    if keyword == "uniqueItems" and isinstance(value, list):
        for index, item in enumerate(value):
            if any(_same(item, earlier) for earlier in value[:index]):
                said = _shown(item, path + (index,))
                return [(Finding(path + (index,), f"{said} is listed twice (each may appear once)"), False)]

    if keyword in ("minProperties", "maxProperties") and isinstance(value, Mapping):
        known = [str(k) for k in value if k in schema.get("properties", value)]
        if len(known) < len(value) and schema.get("minProperties", 0) <= len(known) <= schema.get("maxProperties", len(known)):
            return []  # only unknown keys make the count wrong: the unknown-key errors say it
        got = "an empty table" if not known else f"{len(known)} keys ({', '.join(known)})"
        if schema.get("minProperties") == schema.get("maxProperties") == 1 and "properties" in schema:
            # A key source: say which keys; the forms are in every other message about it.
            one_of = ", ".join(schema["properties"])
            return [(Finding(path, f"expected exactly one of {one_of}, got {got}"), False)]
        return [(Finding(path, f"expected {expected(schema)}, got {got}"), False)]

    # minItems, pattern, minLength, minimum, maximum, exclusiveMinimum, ...: the value has the
    # right type but not an allowed value; say what is allowed.
    return [(Finding(path, f"expected {expected(schema)}, got {_got(value, path)}"), False)]


def _shown(value: Any, path: ConfigPath) -> str:
    """``show(value)``, or as much of it as is safe where it may be a secret."""
    if not isinstance(value, (Mapping, list, tuple)) and may_be_secret(path, value):
        return concealed(value) if isinstance(value, str) else kind(value)
    return show(value)


def _got(value: Any, path: ConfigPath) -> str:
    """``'8082' (a string)``; a table or a list needs no type after it; a secret is not shown."""
    if isinstance(value, (Mapping, list, tuple)):
        return show(value)
    if isinstance(value, str) and path[-1:] == ("base_url",):
        partly = "" if safe_url(value) == value else ", parts not shown: they may be secret"
        return f"{show(safe_url(value))} (a string{partly})"
    if may_be_secret(path, value):
        if isinstance(value, str):
            return f"{concealed(value)} (a string, not shown: it may be a secret)"
        return f"{kind(value)} (not shown: it may be a secret)"
    return f"{show(value)} ({kind(value)})"


def _same(a: Any, b: Any) -> bool:
    # As JSON Schema compares: true is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _not_allowed(value: Any, allowed: Sequence[str], path: ConfigPath) -> _Said:
    if may_be_secret(path, value):
        return (Finding(path, f"expected {_or_list(allowed)}, got {_got(value, path)}"), False)
    if isinstance(value, str):
        words = [a[1:-1] for a in allowed if a.startswith("'") and a.endswith("'")]
        guess = did_you_mean(value, words) if words else None
        hint = f"did you mean {show(guess)}? " if guess else ""
        return (Finding(path, f"{show(value)} is not allowed here ({hint}allowed: {_or_list(allowed)})"), False)
    return (Finding(path, f"expected {_or_list(allowed)}, got {_got(value, path)}"), False)


def _fits(branch: Mapping[str, Any], value: Any) -> bool:
    """Whether a value has the JSON type an anyOf branch is for (whatever else is wrong with it)."""
    types = branch.get("type")
    if types is None and "const" in branch:
        types = _json_type(branch["const"])
    if types is None:
        return True
    if isinstance(types, str):
        types = [types]
    actual = _json_type(value)
    return actual in types or (actual == "integer" and "number" in types)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return "other"


def _translate_choice(error: ValidationError, path: ConfigPath) -> list[_Said]:
    """anyOf: speak about the branch the value was evidently meant for, else list the forms."""
    branches: Sequence[Mapping[str, Any]] = cast("Sequence[Mapping[str, Any]]", error.validator_value)
    value = error.instance
    fitting = [i for i, b in enumerate(branches) if _fits(b, value)]
    # A table or list of the right shape: say what is wrong inside it. A scalar of the right
    # type but a wrong value ("dropp"): list every accepted form, not only its branch's.
    if len(fitting) == 1 and isinstance(value, (Mapping, list, tuple)):
        out: list[_Said] = []
        for sub in error.context or ():
            if sub.relative_schema_path[0] == fitting[0]:
                out.extend(_translate(sub, tuple(sub.absolute_path)))
        if out:
            return out
    forms = _forms(branches)
    # A string meant as one of the named values ('dropp' for 'drop'): "not allowed here".
    if isinstance(value, str) and any(("enum" in b or "const" in b) and _fits(b, value) for b in branches):
        return [_not_allowed(value, forms, path)]
    return [(Finding(path, f"expected {_or_list(forms)}, got {_got(value, path)}"), True)]
