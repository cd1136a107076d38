"""Every example profile routes every model name Claude Code sends to a sensible place."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import EXAMPLES, PROFILES

from rules.loader import load_file

HAIKU = ("claude-haiku-5-5", "claude-haiku-4-5", "claude-3-5-haiku-20241022", "claude-3-haiku-20240307")
SONNET = ("claude-sonnet-5-5", "claude-sonnet-4-5-20250929", "claude-3-7-sonnet-20250219", "claude-sonnet-4-0")
OPUS = ("claude-opus-5-5", "claude-opus-4-1", "claude-opus-4-1-20250805", "claude-3-opus-20240229")
GLM = ("glm-4.7", "glm-4.5-air", "GLM-4.7")  # ANTHROPIC_DEFAULT_*_MODEL values, any case

Targets = list[tuple[str, str]]  # (provider, upstream model) per target


def anthropic(model: str) -> Targets:
    return [("anthropic", model)]


def zai(model: str) -> Targets:
    return [("zai", model)]


def anthropic_then_zai(model: str) -> Targets:
    return [("anthropic", model), ("zai", "glm-4.7")]


EXPECTED: dict[str, dict[tuple[str, ...], Callable[[str], Targets]]] = {
    "mixed": {HAIKU: lambda m: zai("glm-4.7"), SONNET: anthropic, OPUS: anthropic, GLM: zai},
    "all-zai": {HAIKU: lambda m: zai("glm-4.7"), SONNET: lambda m: zai("glm-4.7"),
                OPUS: lambda m: zai("glm-4.5-air"), GLM: zai},
    "anthropic-only": {HAIKU: anthropic, SONNET: anthropic, OPUS: anthropic},
    "fallback": {HAIKU: anthropic_then_zai, SONNET: anthropic_then_zai, OPUS: anthropic_then_zai, GLM: zai},
    "lan": {HAIKU: lambda m: zai("glm-4.7"), SONNET: anthropic, OPUS: anthropic, GLM: zai},
}


def test_every_profile_has_expectations() -> None:
    assert sorted(EXPECTED) == sorted(PROFILES) == sorted(p.stem for p in EXAMPLES.glob("*.toml"))


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_routes_claude_code_model_names(profile: str) -> None:
    ruleset = load_file(EXAMPLES / f"{profile}.toml", env={"ZAI_API_KEY": "x", "GATEWAY_CLIENT_KEY": "y"})
    assert ruleset.warnings == ()
    for names, expect in EXPECTED[profile].items():
        for name in names:
            route = ruleset.resolve(name)
            assert route is not None, f"{profile}: {name} matches no route"
            got = [(t.provider.name, t.upstream_model(name)) for t in route.to]
            assert got == expect(name), f"{profile}: {name} -> route {route.name}: {got}"


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_catches_every_other_name(profile: str) -> None:
    # A model picked with --model or a future tier name must not get a 404.
    ruleset = load_file(EXAMPLES / f"{profile}.toml", env={})
    assert ruleset.resolve("some-future-model-9") is not None


def test_zai_providers_carry_the_wire_policy_zai_needs() -> None:
    for profile in PROFILES:
        ruleset = load_file(EXAMPLES / f"{profile}.toml", env={})
        zai_provider = ruleset.providers.get("zai")
        if zai_provider is None:
            continue
        assert zai_provider.base_url == "https://api.z.ai/api/anthropic"
        assert [(k.kind, k.ref) for k in zai_provider.key] == [("env", "ZAI_API_KEY")]
        assert zai_provider.system_turns == "merge" and zai_provider.tool_choice == "auto"
        assert zai_provider.count_tokens.mode == "estimate" and zai_provider.betas.mode == "drop"
        assert set(zai_provider.drop_fields) == {"context_management", "output_config"}


def test_lan_profile_passes_client_credentials_and_requires_client_keys() -> None:
    ruleset = load_file(EXAMPLES / "lan.toml", env={})
    assert ruleset.server.host == "0.0.0.0"
    assert [(k.kind, k.ref) for k in ruleset.server.client_keys] == [("env", "GATEWAY_CLIENT_KEY")]
    assert [k.kind for k in ruleset.providers["anthropic"].key] == ["client"]
    # Never a shared subscription on a LAN.
    assert all(k.kind != "oauth_file" for p in ruleset.providers.values() for k in p.key)
