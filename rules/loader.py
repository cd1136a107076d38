"""routes.toml bytes -> UTF-8 -> TOML -> JSON Schema -> semantic checks -> RuleSet.

Each stage reports every problem it finds, located at ``file:line: path``; a later stage runs
only when the earlier ones found no error (a document with the wrong shapes cannot be checked
for meaning). ``load_*`` raise ``ConfigError``; ``check_bytes`` (for ``gateway validate``)
returns the errors and the warnings instead::

    load_bytes(data, file="routes.toml")        -> RuleSet, warnings on .warnings
    check_bytes(data, file="routes.toml")       -> (RuleSet | None, [Problem, ...] in line order)
    compile_document(doc, file=..., text=...)   -> RuleSet, from an already parsed document
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.protocols import Validator

from rules import semantics
from rules.build import build_ruleset, route_conditions
from rules.errors import ConfigError, Problem
from rules.fast_schema import Check, compile_schema
from rules.locate import ConfigPath, LineMap, format_path
from rules.model import ConfigSource, RuleSet
from rules.schema_messages import Finding, messages
from rules.shadowing import find_shadowed
from schemas import load_schema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

__all__ = ["check_bytes", "compile_document", "load_bytes", "load_file"]

_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")
_TOML_KEY_TUPLE = re.compile(r"\(((?:'[^']*'(?:, )?)+),?\)")


def load_bytes(data: bytes, *, file: str = "routes.toml", env: Mapping[str, str] | None = None) -> RuleSet:
    """Compile a routes.toml. Raises ``ConfigError`` holding every error found.

    ``env`` (the environment, for the "variable not set" warnings) may be None: no env checks.
    """
    ruleset, problems = _load(data, file, env)
    return _ruleset_or_raise(ruleset, problems)


def load_file(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> RuleSet:
    """Read and compile a routes.toml; an unreadable file is a ``ConfigError`` naming it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(Problem(f"cannot read the config file: {reason}", file=str(path))) from None
    return load_bytes(data, file=str(path), env=env)


def check_bytes(
    data: bytes, *, file: str = "routes.toml", env: Mapping[str, str] | None = None
) -> tuple[RuleSet | None, list[Problem]]:
    """Every error and warning of a routes.toml, in line order; the RuleSet when there is no error."""
    return _load(data, file, env)


def compile_document(
    doc: Mapping[str, Any],
    *,
    file: str = "<config>",
    text: str | None = None,
    source: ConfigSource | None = None,
    env: Mapping[str, str] | None = None,
) -> RuleSet:
    """Schema, semantic checks and build for an already parsed document.

    ``text``, the TOML it came from, is only used to find line numbers. ``source`` defaults to
    ``ConfigSource("file", file)``. Raises ``ConfigError`` like ``load_bytes``.
    """
    ruleset, problems = _compile(doc, file, text, source or ConfigSource("file", file), env)
    return _ruleset_or_raise(ruleset, problems)


def _ruleset_or_raise(ruleset: RuleSet | None, problems: list[Problem]) -> RuleSet:
    errors = [p for p in problems if p.severity == "error"]
    if errors or ruleset is None:
        raise ConfigError(errors)
    return ruleset


# --- the stages ---------------------------------------------------------------------------

# The RuleSet (None when there is an error) and every problem, errors and warnings, in order.
_Outcome = tuple[RuleSet | None, list[Problem]]


def _load(data: bytes, file: str, env: Mapping[str, str] | None) -> _Outcome:
    source = ConfigSource("file", file, hashlib.sha256(data).hexdigest())
    try:
        # utf-8-sig: a byte-order mark (some Windows editors write one) is not an error.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = (
            f"the file is not valid UTF-8: byte 0x{data[exc.start]:02x} at column {column} "
            "(save it as UTF-8)"
        )
        return None, [Problem(message, file=file, line=line)]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [_toml_problem(exc, text, file)]
    except (ValueError, RecursionError) as exc:
        # tomllib lets a few errors through untranslated (an integer too long for int()).
        return None, [Problem(f"invalid TOML: {_sentence(exc)}", file=file, line=None)]
    return _compile(doc, file, text, source, env)


def _compile(
    doc: Mapping[str, Any],
    file: str,
    text: str | None,
    source: ConfigSource,
    env: Mapping[str, str] | None,
) -> _Outcome:
    if not isinstance(doc, Mapping):
        return None, [Problem("the config must be a table of keys, not a single value", file=file, line=1)]
    validator, is_valid = _validators()
    try:
        # The compiled check answers for valid documents, the common case, in a fraction of
        # jsonschema's time; jsonschema (the reference) then finds and words the errors.
        found = [] if is_valid(doc) else messages(validator.iter_errors(doc))
    except RecursionError:
        found = [Finding((), "the document is nested too deeply")]
    if found:
        return None, _located(found, doc, file, text)

    findings = semantics.check(doc, env)
    patterns = [[r["match"]] if isinstance(r["match"], str) else r["match"] for r in doc["route"]]
    ruleset = None if any(f.severity == "error" for f in findings) else build_ruleset(doc, source)
    when = (
        [r.when for r in ruleset.routes]
        if ruleset is not None
        else [route_conditions(r.get("when")) for r in doc["route"]]
    )
    findings += semantics.shadowing(doc, find_shadowed(patterns, when))

    problems = _located(findings, doc, file, text)
    if any(p.severity == "error" for p in problems):
        return None, problems
    if ruleset is not None:
        # The RuleSet is ours alone until we return it; set its warnings in place rather than
        # copy it, which would build its matcher a second time.
        object.__setattr__(ruleset, "warnings", tuple(problems))
    return ruleset, problems


def _located(findings: Sequence[Finding], doc: Any, file: str, text: str | None) -> list[Problem]:
    """Findings as Problems with their lines, in line order, then in document order.

    The text is scanned for lines only when there is something to place.
    """
    lines = LineMap(text) if text is not None and findings else None
    ranked = []
    for f in findings:
        line = lines.line_of(f.path) if lines is not None else None
        problem = Problem(f.message, file=file, line=line, path=format_path(f.path), severity=f.severity)
        ranked.append(((line or 0, _document_order(doc, f.path)), problem))
    ranked.sort(key=lambda item: item[0])
    return [problem for _, problem in ranked]


def _document_order(doc: Any, path: ConfigPath) -> tuple[int, ...]:
    """Where a path sits in the document: each step's position among its siblings.

    Orders problems that share a line (``[429, 200, 429]``) the way the file lists them.
    """
    rank: list[int] = []
    node = doc
    for part in path:
        if isinstance(node, Mapping) and part in node:
            rank.append(list(node).index(part))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            rank.append(part)
        else:
            break
        node = node[part]
    return tuple(rank)


# --- TOML errors --------------------------------------------------------------------------

def _toml_problem(exc: Exception, text: str, file: str) -> Problem:
    """tomllib's "Invalid value (at line 3, column 8)" -> line 3, "invalid value (column 8)"."""
    raw = str(exc)
    m = _TOML_POSITION.search(raw)
    message = raw[: m.start()] if m else raw
    # "Cannot declare ('a', 'b') twice": show the key the way the file spells it.
    message = _TOML_KEY_TUPLE.sub(
        lambda k: "'" + ".".join(re.findall(r"'([^']*)'", k.group(1))) + "'", message
    )
    if m and m.group(1):
        line, where = int(m.group(1)), f" (column {m.group(2)})"
    else:
        # "At end of document": the last line that has something on it.
        line, where = text.rstrip().count("\n") + 1, " (at the end of the file)"
    return Problem(f"invalid TOML: {_sentence(message)}{where}", file=file, line=line)


def _sentence(message: object) -> str:
    text = str(message).strip()
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


# --- the validator ------------------------------------------------------------------------

def _is_integer(_checker: Any, value: Any) -> bool:
    # TOML tells 8082 from 8082.0; a float where an integer belongs is a mistake, not a port.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(_checker: Any, value: Any) -> bool:
    # nan and inf pass every bound check (nan > 0 is false, so is nan <= 0): refuse them here.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


@lru_cache(maxsize=1)
def _validators() -> tuple[Validator, Check]:
    """Built once per process: checking the schema and compiling it are the slow parts."""
    checker = Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": _is_integer, "number": _is_number}
    )
    cls = validators.extend(Draft202012Validator, type_checker=checker)  # type: ignore[no-untyped-call]
    schema = load_schema()
    cls.check_schema(schema)
    inlined = _inline_refs(schema)
    return cls(inlined), compile_schema(inlined)


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every local ``$ref`` replaced by what it points to.

    Following a ``$ref`` through the ``referencing`` registry costs more than the rest of a
    check; the schema has no recursion, so each can be inlined once, up front.
    """
    defs = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: inline(v) for k, v in node.items() if k != "$defs"}
        ref = out.pop("$ref", None)
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = inline(defs[ref[len("#/$defs/"):]])
            merged = dict(target)
            merged.update(out)  # the referring node's own keywords (description) win
            return merged
        if ref is not None:
            out["$ref"] = ref
        return out

    inlined: dict[str, Any] = inline(schema)  # builds new dicts and lists throughout
    return inlined
