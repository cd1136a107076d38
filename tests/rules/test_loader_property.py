"""Property tests: whatever the input, the loader gives a RuleSet or a ConfigError, nothing else.

Three kinds of input: arbitrary bytes, arbitrary (and TOML-looking) text, and structured
documents with the real key names and random, often wrong, values, rendered as TOML in
several styles. The structured ones also check that the compiled schema check agrees with
jsonschema, and that every problem is placed on a line of the file.
"""

from __future__ import annotations

import json
import math
import re
import sys
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.errors import ConfigError
from rules.loader import _validators, check_bytes, load_bytes
from rules.model import RuleSet

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ENV = {"ZAI_API_KEY": "set", "EMPTY": ""}
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def loads_or_fails_cleanly(data: bytes) -> RuleSet | None:
    """The property itself: a RuleSet, or a ConfigError whose problems all render."""
    try:
        rules = load_bytes(data, file="p.toml", env=ENV)
    except ConfigError as exc:
        assert exc.problems
        assert all(isinstance(p.render(), str) and p.severity == "error" for p in exc.problems)
        return None
    assert isinstance(rules, RuleSet)
    return rules


# --- unstructured input ---------------------------------------------------------------------

@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    loads_or_fails_cleanly(data)


@FAST
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    loads_or_fails_cleanly(text.encode("utf-8"))


PIECES = list("[]{}=\"'#.,\n \t-_*?abz019") + ["version", "route", "providers", "to", '"""', "'''", "[[route]]"]
TOMLISH = st.lists(st.sampled_from(PIECES), max_size=80).map("".join)


@FAST
@given(TOMLISH)
def test_text_made_of_toml_pieces(text: str) -> None:
    loads_or_fails_cleanly(text.encode("utf-8"))


# --- structured documents -------------------------------------------------------------------

NAMES = ["anthropic", "zai", "other", "z ai", ""]
PATTERNS = ["*", "claude-*", "claude-haiku-*", "glm-4.7", "GLM-4.7", "claude-opus-4-[0-9]", "claude-opus-4-[5-9]", "?", "", "claude-haiku-4-5"]
KEYS = ["version", "server", "defaults", "providers", "route", "base_url", "key", "env", "value", "match", "to", "provider", "model"]

scalars = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-5, max_value=70000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(min_value=date(1000, 1, 1)),
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def sometimes(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes anything at all."""
    return st.one_of(plausible, plausible, plausible, anything)


key_source = sometimes(
    st.one_of(
        st.fixed_dictionaries({"env": st.sampled_from(["ZAI_API_KEY", "EMPTY", "UNSET", "1BAD"])}),
        st.fixed_dictionaries({"value": st.sampled_from(["sk-0123456789abcdefgh", ""])}),
        st.fixed_dictionaries({"oauth_file": st.sampled_from([True, False, "~/.claude/.credentials.json", ""])}),
        st.fixed_dictionaries({"client": st.sampled_from([True, False])}),
        st.dictionaries(st.sampled_from(["env", "value", "oauth_file", "client", "x"]), st.sampled_from(["A", True]), max_size=3),
    )
)
provider = sometimes(
    st.fixed_dictionaries(
        {
            "base_url": sometimes(st.sampled_from(["https://api.z.ai/api/anthropic/", "http://localhost:8000", "https://u:p@h/?q#f", "http://h:port", "ftp://x", ""])),
            "key": sometimes(key_source | st.lists(key_source, max_size=3)),
        },
        optional={
            "auth": sometimes(st.sampled_from(["x-api-key", "bearer", "Bearer"])),
            "betas": sometimes(st.sampled_from(["forward", "drop", "dropp"]) | st.lists(st.sampled_from(["a", "b", ""]), max_size=3)),
            "thinking": sometimes(st.sampled_from(["foreign", "strip", "keep", "x"])),
            "thinking_param": st.sampled_from(["keep", "drop", "no_budget", "none"]),
            "system_turns": st.sampled_from(["keep", "merge"]),
            "tool_choice": st.sampled_from(["keep", "auto"]),
            "count_tokens": sometimes(st.sampled_from(["forward", "estimate", "reject"]) | st.fixed_dictionaries({"via": st.sampled_from(NAMES)})),
            "drop_fields": sometimes(st.lists(st.sampled_from(["model", "context_management", "x"]), max_size=3)),
            "strip_cache_control": sometimes(st.booleans()),
            "headers": sometimes(st.dictionaries(st.sampled_from(["x-extra", "host", "Authorization", "a b"]), st.sampled_from(["v", "a\nb"]), max_size=2)),
            "timeout_s": sometimes(st.floats(min_value=-1, max_value=1e6) | st.integers(-1, 1000)),
            "connect_timeout_s": st.floats(allow_nan=True, allow_infinity=True),
            "max_concurrent": st.integers(-1, 20),
            "max_queue": st.integers(-1, 20),
            "timout": anything,
        },
    )
)
CLASSES = ["main", "subagent", "compaction", "unknown", "subagents", "Main", ""]
when = sometimes(
    st.fixed_dictionaries(
        {},
        optional={
            "request_class": sometimes(st.sampled_from(CLASSES) | st.lists(st.sampled_from(CLASSES), max_size=3)),
            "agent_type": sometimes(st.sampled_from(["general-*", ""]) | st.lists(st.sampled_from(["a*", "B", ""]), max_size=2)),
            "server_tools": sometimes(st.booleans()),
            "request_type": anything,
        },
    )
)
spill_at = sometimes(
    st.dictionaries(
        st.sampled_from(["5h", "7d", "7d_oi", "7D", "weekly"]),
        sometimes(st.sampled_from([0.85, 1, 1.0, 0, -0.1, 1.5]) | st.floats(allow_nan=True, allow_infinity=True)),
        max_size=3,
    )
)
route = sometimes(
    st.fixed_dictionaries(
        {
            "match": sometimes(st.sampled_from(PATTERNS) | st.lists(st.sampled_from(PATTERNS), max_size=4)),
            "to": sometimes(
                st.sampled_from(NAMES)
                | st.lists(
                    st.fixed_dictionaries(
                        {"provider": st.sampled_from(NAMES)},
                        optional={"model": st.sampled_from(["glm-4.7", ""]), "spill_at": spill_at},
                    ),
                    max_size=3,
                )
            ),
        },
        optional={
            "name": sometimes(st.sampled_from(["haiku", "default", "a b", "route.x"])),
            "when": when,
            "fallback_on": sometimes(st.lists(st.integers(399, 600), max_size=3)),
            "priority": anything,
        },
    )
)
documents = st.fixed_dictionaries(
    {
        "version": sometimes(st.just(1)),
        "providers": sometimes(st.dictionaries(st.sampled_from(NAMES), provider, max_size=3)),
        "route": sometimes(st.lists(route, max_size=4)),
    },
    optional={
        "server": sometimes(
            st.fixed_dictionaries(
                {},
                optional={
                    "host": st.sampled_from(["127.0.0.1", ""]),
                    "port": sometimes(st.integers(-1, 70000)),
                    "client_keys": st.lists(key_source, max_size=2),
                    "max_body_mb": st.floats(allow_nan=True, allow_infinity=True),
                },
            )
        ),
        "defaults": sometimes(st.fixed_dictionaries({}, optional={"timeout_s": st.integers(-1, 5), "fallback_on": st.lists(st.integers(399, 600), max_size=3)})),
        "verison": anything,
    },
)


# Documents the schema accepts, so the semantic checks and the build run too. Names and
# patterns are few, so unknown providers, duplicates, catch-alls and shadowing happen often.
GOOD_NAMES = ["anthropic", "zai", "other"]
good_key_source = st.one_of(
    st.fixed_dictionaries({"env": st.sampled_from(["ZAI_API_KEY", "EMPTY", "UNSET"])}),
    st.fixed_dictionaries({"value": st.just("sk-0123456789abcdefgh")}),
    st.fixed_dictionaries({"oauth_file": st.sampled_from([True, "~/.claude/.credentials.json"])}),
    st.fixed_dictionaries({"client": st.just(True)}),
)
good_provider = st.fixed_dictionaries(
    {
        # Mostly fine; now and then a URL with credentials, a query or a bad port.
        "base_url": st.sampled_from(["https://api.z.ai/api/anthropic/"] * 6 + ["http://localhost:8000", "https://u:p@h/?q#f", "http://h:port"]),
        "key": good_key_source | st.lists(good_key_source, min_size=1, max_size=3),
    },
    optional={
        "auth": st.sampled_from(["x-api-key", "bearer"]),
        "betas": st.sampled_from(["forward", "drop"]) | st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True),
        "count_tokens": st.sampled_from(["forward", "estimate", "reject"]) | st.fixed_dictionaries({"via": st.sampled_from(GOOD_NAMES + ["nobody"])}),
        "drop_fields": st.lists(st.sampled_from(["context_management"] * 5 + ["model"]), max_size=1),
        "headers": st.dictionaries(st.sampled_from(["x-extra"] * 5 + ["host"]), st.just("v"), max_size=1),
        "timeout_s": st.floats(min_value=0.5, max_value=600),
        "max_concurrent": st.integers(1, 8),
        "max_queue": st.integers(0, 8),
    },
).filter(lambda p: "max_queue" not in p or "max_concurrent" in p)
GOOD_CLASSES = ["main", "subagent", "compaction", "unknown"]
good_when = st.fixed_dictionaries(
    {},
    optional={
        "request_class": st.sampled_from(GOOD_CLASSES) | st.lists(st.sampled_from(GOOD_CLASSES), min_size=1, max_size=4, unique=True),
        "agent_type": st.sampled_from(["general-*", "*"]) | st.lists(st.sampled_from(["a*", "B", "general-purpose"]), min_size=1, max_size=2),
        "server_tools": st.booleans(),
    },
).filter(bool)
good_spill_at = st.dictionaries(st.sampled_from(["5h", "7d", "7d_oi"]), st.sampled_from([0.85, 1, 0.5]), min_size=1, max_size=3)
good_route = st.fixed_dictionaries(
    {
        "match": st.sampled_from([p for p in PATTERNS if p]) | st.lists(st.sampled_from([p for p in PATTERNS if p]), min_size=1, max_size=3),
        "to": st.sampled_from(GOOD_NAMES)
        | st.lists(
            st.fixed_dictionaries({"provider": st.sampled_from(GOOD_NAMES)}, optional={"model": st.just("glm-4.7"), "spill_at": good_spill_at}),
            min_size=1,
            max_size=2,
        ),
    },
    optional={
        "name": st.sampled_from(["haiku", "sonnet", "default", "route.x"]),
        "when": good_when,
        "fallback_on": st.lists(st.integers(400, 599), max_size=2, unique=True),
    },
)
good_documents = st.fixed_dictionaries(
    {
        "version": st.just(1),
        "providers": st.dictionaries(st.sampled_from(GOOD_NAMES), good_provider, min_size=1, max_size=3),
        "route": st.lists(good_route, min_size=1, max_size=4),
    },
    optional={"server": st.fixed_dictionaries({"port": st.integers(1, 65535), "client_keys": st.lists(good_key_source.filter(lambda k: "env" in k or "value" in k), min_size=1, max_size=2)})},
)


# --- a small TOML writer, for the tests only ------------------------------------------------

def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_string(text: str) -> str:
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"


def render(doc: dict[str, Any], tables: bool, multiline: bool) -> str:
    """``tables``: [section], [providers.NAME] and [[route]] headers; else all inline.
    ``multiline``: arrays spread over several lines, one element each."""

    def value(v: Any) -> str:
        if multiline and isinstance(v, list) and v:
            return "[\n" + "".join(f"  {toml_value(x)},  # element\n" for x in v) + "]"
        return toml_value(v)

    if not tables:
        return "".join(f"{toml_key(k)} = {value(v)}\n" for k, v in doc.items())
    head: list[str] = []
    body: list[str] = []
    for k, v in doc.items():
        if isinstance(v, dict):
            body.append(f"\n[{toml_key(k)}]\n")
            subtables = {n: t for n, t in v.items() if isinstance(t, dict)}
            body += [f"{toml_key(n)} = {value(t)}\n" for n, t in v.items() if n not in subtables]
            for n, t in subtables.items():
                body.append(f"\n[{toml_key(k)}.{toml_key(n)}]\n")
                body += [f"{toml_key(kk)} = {value(vv)}\n" for kk, vv in t.items()]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                body.append(f"\n[[{toml_key(k)}]]\n")
                body += [f"{toml_key(kk)} = {value(vv)}\n" for kk, vv in item.items()]
        else:
            head.append(f"{toml_key(k)} = {value(v)}\n")
    return "".join(head + body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(good_documents, documents), st.booleans(), st.booleans())
def test_structured_documents(doc: dict[str, Any], tables: bool, multiline: bool) -> None:
    text = render(doc, tables, multiline)
    parsed = tomllib.loads(text)  # the writer above must write valid TOML

    validator, is_valid = _validators()
    assert is_valid(parsed) == validator.is_valid(parsed), json.dumps(parsed, default=str)

    rules = loads_or_fails_cleanly(text.encode("utf-8"))
    checked, problems = check_bytes(text.encode("utf-8"), file="p.toml", env=ENV)
    assert (checked is None) == (rules is None)
    line_count = text.count("\n") + 1
    assert all(p.line is not None and 1 <= p.line <= line_count for p in problems)
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)
