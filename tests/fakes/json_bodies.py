"""Request bodies that try to make routing and the upstream read different models (hypothesis).

`bodies(models)` draws JSON objects written by hand, so that they can hold what a serialiser
never writes: a key twice, a key spelled with escapes (`"mod\\u0065l"`), odd whitespace, a
`model` key nested in messages or in a tool's schema, a `model` whose value is not a string.
Every drawn body is valid JSON. The readings a real parser makes of it:

- `last_model(raw)`: what orjson, Python's json and most parsers read (the last duplicate wins);
- `first_model(raw)`: what a parser that keeps the first duplicate reads;
- `top_level_models(raw)`: how many top-level keys read "model" once escapes are decoded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from hypothesis import strategies as st

__all__ = ["bodies", "first_model", "last_model", "top_level_models"]

_ABSENT = object()


def last_model(raw: bytes) -> Any:
    """The top-level model as orjson reads it (the last duplicate wins); `_ABSENT` if none."""
    return orjson.loads(raw).get("model", _ABSENT)


def first_model(raw: bytes) -> Any:
    """The top-level model as a parser that keeps the first duplicate reads it."""

    def first(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            out.setdefault(key, value)
        return out

    return json.loads(raw, object_pairs_hook=first).get("model", _ABSENT)


def top_level_models(raw: bytes) -> int:
    pairs = json.loads(raw, object_pairs_hook=lambda p: p)
    return sum(1 for key, _ in pairs if key == "model")


_WS = st.sampled_from(["", "", "", " ", "\n", "\t", " \r\n  "])


@st.composite
def _model_key(draw: st.DrawFn) -> str:
    """ "model" as JSON source: plain, or with some letters as \\u escapes (either hex case)."""
    out = []
    for letter in "model":
        if draw(st.integers(0, 5)) == 0:
            code = f"{ord(letter):04x}"
            out.append("\\u" + (code.upper() if draw(st.booleans()) else code))
        else:
            out.append(letter)
    return '"' + "".join(out) + '"'


def _string(value: str) -> str:
    return json.dumps(value)


@st.composite
def _value(draw: st.DrawFn, models: Sequence[str], depth: int) -> str:
    """A JSON value as source text; objects may hold their own `model` keys."""
    kinds = ["model", "string", "number", "literal"] + (["object", "array"] if depth < 3 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "model":
        return _string(draw(st.sampled_from(models)))
    if kind == "string":
        return _string(draw(st.sampled_from(["hi", 'say "model": x', "\\u0065", "model", "é"])))
    if kind == "number":
        return str(draw(st.integers(-5, 5)))
    if kind == "literal":
        return draw(st.sampled_from(["true", "false", "null"]))
    if kind == "array":
        items = draw(st.lists(_value(models, depth + 1), max_size=3))
        return "[" + ",".join(items) + "]"
    return draw(_object(models, depth + 1))


@st.composite
def _object(draw: st.DrawFn, models: Sequence[str], depth: int) -> str:
    members = []
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.one_of(_model_key(), st.sampled_from(['"type"', '"input"', '"properties"', '"x"'])))
        members.append(f"{draw(_WS)}{key}{draw(_WS)}:{draw(_WS)}{draw(_value(models, depth))}{draw(_WS)}")
    return "{" + ",".join(members) + "}"


@st.composite
def bodies(draw: st.DrawFn, models: Sequence[str]) -> bytes:
    """A Messages request body: 1-3 top-level model keys, messages and max_tokens, extras around them.

    Half of them start as Claude Code's do, `{"model":"...",` (the head the gateway reads
    without a parse), with any of the rest after it.
    """
    head = draw(st.booleans())
    top: list[tuple[str, str]] = [
        ('"max_tokens"', "16"),
        ('"messages"', '[{"role":"user","content":"hi"}]'),
    ]
    for _ in range(draw(st.integers(0 if head else 1, 2))):
        value = draw(st.one_of(st.sampled_from(models).map(_string), _value(models, 1)))
        top.append((draw(_model_key()), value))
    for _ in range(draw(st.integers(0, 2))):
        top.append((draw(st.sampled_from(['"tools"', '"metadata"', '"stream"', '"x"'])), draw(_value(models, 1))))
    order = draw(st.permutations(range(len(top))))
    members = [f"{draw(_WS)}{top[i][0]}{draw(_WS)}:{draw(_WS)}{top[i][1]}{draw(_WS)}" for i in order]
    if head:
        members.insert(0, f'"model":{_string(draw(st.sampled_from(models)))}')
    return (draw(_WS) + "{" + ",".join(members) + "}" + draw(_WS)).encode()
