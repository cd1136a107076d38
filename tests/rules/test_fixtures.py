"""Data-driven loader tests, in the manner of tomli's.

``tests/data/valid/NAME.toml`` loads, and ``NAME.expect.json`` says what some model names
resolve to, what some requests resolve to (a model with headers, or a captured request of
``tests/data/requests/``), parts of the compiled RuleSet, and every warning as a rendered line.
``tests/data/invalid/NAME.toml`` fails, and ``NAME.expect.txt`` holds the exact error output.
Files are named by their path from the repository root, as ``gateway validate`` run there
would show them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rules.conditions import Conditions, RequestFacts, server_tools_in
from rules.errors import ConfigError
from rules.loader import check_bytes, load_bytes, load_file
from rules.model import KeySource, Provider, Route, RuleSet

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
VALID = sorted((DATA / "valid").glob("*.toml"))
INVALID = sorted((DATA / "invalid").glob("*.toml"))
REQUESTS = DATA / "requests"


def shown(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def keys(chain: tuple[KeySource, ...]) -> list[list[str]]:
    return [[k.kind, k.ref] for k in chain]


def provider_view(provider: Provider) -> dict[str, Any]:
    """A provider as plain JSON values, to compare with an expect.json."""
    return {
        "base_url": provider.base_url,
        "key": keys(provider.key),
        "auth": provider.auth,
        "betas": {"mode": provider.betas.mode, "allowed": sorted(provider.betas.allowed)},
        "thinking": provider.thinking,
        "thinking_param": provider.thinking_param,
        "count_tokens": {"mode": provider.count_tokens.mode, "via": provider.count_tokens.via},
        "system_turns": provider.system_turns,
        "tool_choice": provider.tool_choice,
        "drop_fields": list(provider.drop_fields),
        "strip_cache_control": provider.strip_cache_control,
        "headers": [list(h) for h in provider.headers],
        "timeout_s": provider.timeout_s,
        "connect_timeout_s": provider.connect_timeout_s,
        "max_concurrent": provider.max_concurrent,
        "max_queue": provider.max_queue,
        "preset": provider.preset,
        "origins": provider.origins,
    }


def resolved(rules: RuleSet, model: str) -> dict[str, Any] | None:
    route = rules.resolve(model)
    if route is None:
        return None
    return {"route": route.name, "to": [[t.provider.name, t.model] for t in route.to]}


def when_view(when: Conditions | None) -> dict[str, Any] | None:
    if when is None:
        return None
    return {
        "request_class": None if when.request_class is None else sorted(when.request_class),
        "agent_type": None if when.agent_type is None else list(when.agent_type),
        "server_tools": when.server_tools,
    }


def route_view(route: Route) -> dict[str, Any]:
    return {
        "index": route.index,
        "match": list(route.match),
        "fallback_on": sorted(route.fallback_on),
        "when": when_view(route.when),
        "to": [[t.provider.name, t.model, [list(w) for w in t.spill_at]] for t in route.to],
    }


def request(case: dict[str, Any]) -> tuple[str, RequestFacts]:
    """A resolve_requests case as (model, facts): a captured request, or a model and headers."""
    if "capture" in case:
        captured = json.loads((REQUESTS / f"{case['capture']}.json").read_text(encoding="utf-8"))
        model = case.get("model", captured["body"]["model"])
        tools = server_tools_in(captured["body"].get("tools"))
        return model, RequestFacts.from_headers(captured["headers"], server_tools=tools)
    return case["model"], RequestFacts.from_headers(case["headers"], server_tools=case.get("server_tools", False))


def test_there_are_enough_cases() -> None:
    assert len(VALID) >= 5
    assert len(INVALID) >= 30
    for path in VALID:
        assert path.with_suffix(".expect.json").is_file(), f"{shown(path)} has no expect.json"
    for path in INVALID:
        assert path.with_suffix(".expect.txt").is_file(), f"{shown(path)} has no expect.txt"


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid(path: Path) -> None:
    expect = json.loads(path.with_suffix(".expect.json").read_text(encoding="utf-8"))
    rules = load_bytes(path.read_bytes(), file=shown(path), env=expect.get("env"))

    for model, want in expect["resolve"].items():
        assert resolved(rules, model) == want, model
    for case in expect.get("resolve_requests", []):
        model, facts = request(case)
        route = rules.resolve(model, facts)
        assert (None if route is None else route.name) == case["route"], case
    for name, fields in expect.get("providers", {}).items():
        view = provider_view(rules.providers[name])
        assert {k: view[k] for k in fields} == fields, name
    routes = {r.name: r for r in rules.routes}
    for name, fields in expect.get("routes", {}).items():
        view = route_view(routes[name])
        assert {k: view[k] for k in fields} == fields, name
    server = expect.get("server", {})
    server_view = {
        "host": rules.server.host,
        "port": rules.server.port,
        "client_keys": keys(rules.server.client_keys),
        "max_body_mb": rules.server.max_body_mb,
        "allowed_hosts": list(rules.server.allowed_hosts),
        "ledger": rules.server.ledger,
        "ledger_days": rules.server.ledger_days,
    }
    assert {k: server_view[k] for k in server} == server
    assert [w.render() for w in rules.warnings] == expect["warnings"]
    assert all(w.severity == "warning" for w in rules.warnings)


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_check_bytes_reports_the_same_warnings(path: Path) -> None:
    expect = json.loads(path.with_suffix(".expect.json").read_text(encoding="utf-8"))
    rules, problems = check_bytes(path.read_bytes(), file=shown(path), env=expect.get("env"))
    assert rules is not None
    assert [p.render() for p in problems] == expect["warnings"]


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid(path: Path) -> None:
    expected = path.with_suffix(".expect.txt").read_text(encoding="utf-8").rstrip("\n")
    with pytest.raises(ConfigError) as caught:
        load_bytes(path.read_bytes(), file=shown(path))
    assert str(caught.value) == expected
    assert all(p.severity == "error" and p.line is not None for p in caught.value.problems)


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_check_bytes_has_the_same_errors(path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_bytes(path.read_bytes(), file=shown(path))
    rules, problems = check_bytes(path.read_bytes(), file=shown(path))
    assert rules is None
    assert [p for p in problems if p.severity == "error"] == list(caught.value.problems)
    lines = [p.line or 0 for p in problems]
    assert lines == sorted(lines)


@pytest.mark.parametrize("path", INVALID[:3] + VALID[:2], ids=[p.stem for p in INVALID[:3] + VALID[:2]])
def test_load_file_agrees_with_load_bytes(path: Path) -> None:
    try:
        from_bytes: RuleSet | str = load_bytes(path.read_bytes(), file=str(path))
    except ConfigError as exc:
        from_bytes = str(exc)
    try:
        from_file: RuleSet | str = load_file(path)
    except ConfigError as exc:
        from_file = str(exc)
    if isinstance(from_bytes, str):
        assert from_file == from_bytes
    else:
        assert isinstance(from_file, RuleSet)
        assert from_file.routes == from_bytes.routes
        assert from_file.source == from_bytes.source
