"""Every example profile routes every model name Claude Code sends to a sensible place."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import EXAMPLES, PROFILES

from fakes.claude_code import load as load_captured
from rules.conditions import RequestFacts
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


def deepseek(model: str) -> Targets:
    return [("deepseek", model)]  # DeepSeek maps Claude names itself


def ollama(model: str) -> Targets:
    return [("ollama", model)]


OLLAMA_MODELS = ("qwen3-coder", "gpt-oss:20b")  # `claude --model ...` with a local model's name
DEEPSEEK_MODELS = ("deepseek-chat", "deepseek-reasoner")

EXPECTED: dict[str, dict[tuple[str, ...], Callable[[str], Targets]]] = {
    "mixed": {HAIKU: lambda m: zai("glm-4.7"), SONNET: anthropic, OPUS: anthropic, GLM: zai},
    # Z.AI's own Claude Code guide: Opus and Sonnet on GLM-4.7, Haiku on GLM-4.5-Air.
    "all-zai": {HAIKU: lambda m: zai("glm-4.5-air"), SONNET: lambda m: zai("glm-4.7"),
                OPUS: lambda m: zai("glm-4.7"), GLM: zai},
    "all-deepseek": {HAIKU: deepseek, SONNET: deepseek, OPUS: deepseek, DEEPSEEK_MODELS: deepseek},
    "anthropic-only": {HAIKU: anthropic, SONNET: anthropic, OPUS: anthropic},
    "fallback": {HAIKU: anthropic_then_zai, SONNET: anthropic_then_zai, OPUS: anthropic_then_zai, GLM: zai},
    "lan": {HAIKU: lambda m: zai("glm-4.7"), SONNET: anthropic, OPUS: anthropic, GLM: zai},
    "local-ollama": {HAIKU: lambda m: ollama("qwen3-coder"), SONNET: lambda m: ollama("qwen3-coder"),
                     OPUS: lambda m: ollama("qwen3-coder"), OLLAMA_MODELS: ollama},
    # A request without hint headers is the main conversation: Anthropic, Z.AI once it spills.
    "quota-saver": {HAIKU: anthropic_then_zai, SONNET: anthropic_then_zai, OPUS: anthropic_then_zai, GLM: zai},
}
ENV = {"ZAI_API_KEY": "x", "GATEWAY_CLIENT_KEY": "y", "DEEPSEEK_API_KEY": "z"}


def test_every_profile_has_expectations() -> None:
    assert sorted(EXPECTED) == sorted(PROFILES) == sorted(p.stem for p in EXAMPLES.glob("*.toml"))


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_routes_claude_code_model_names(profile: str) -> None:
    ruleset = load_file(EXAMPLES / f"{profile}.toml", env=ENV)
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


def test_every_provider_uses_its_preset() -> None:
    # Short profiles: the wire policy comes from the preset, not from lines copied into each file.
    for profile in PROFILES:
        ruleset = load_file(EXAMPLES / f"{profile}.toml", env={})
        for name, provider in ruleset.providers.items():
            assert provider.preset == name, f"{profile}: {name}"
            written = provider.file_keys - {"preset", "base_url", "key"}
            assert written == set(), f"{profile}: {name} writes {sorted(written)} beside its preset"


def test_zai_providers_carry_the_wire_policy_zai_needs() -> None:
    for profile in PROFILES:
        ruleset = load_file(EXAMPLES / f"{profile}.toml", env={})
        zai_provider = ruleset.providers.get("zai")
        if zai_provider is None:
            continue
        assert zai_provider.base_url == "https://api.z.ai/api/anthropic"
        assert zai_provider.origin("system_turns") == "preset zai"
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


def test_deepseek_profile_sends_its_key_as_x_api_key() -> None:
    provider = load_file(EXAMPLES / "all-deepseek.toml", env={}).providers["deepseek"]
    assert provider.base_url == "https://api.deepseek.com/anthropic"
    assert [(k.kind, k.ref) for k in provider.key] == [("env", "DEEPSEEK_API_KEY")]
    assert provider.auth == "x-api-key" and provider.count_tokens.mode == "estimate"


def test_local_ollama_profile_needs_no_key_and_no_internet() -> None:
    ruleset = load_file(EXAMPLES / "local-ollama.toml", env={})
    assert ruleset.warnings == ()  # not even an unset variable: nothing to set
    (provider,) = ruleset.providers.values()
    assert provider.key == ()  # no credential sent, the client's not passed on
    assert provider.base_url == "http://localhost:11434"
    assert ruleset.server.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("capture", "provider", "upstream_model"),
    [
        ("cc_hint_headers_main_spawning_agent", "anthropic", "claude-sonnet-5-5"),
        ("cc_hint_headers_main_after_agent", "anthropic", "claude-sonnet-5-5"),
        ("cc_hint_headers_subagent", "zai", "glm-4.7"),
    ],
)
def test_quota_saver_routes_claude_codes_requests_by_what_they_are_for(
    capture: str, provider: str, upstream_model: str
) -> None:
    ruleset = load_file(EXAMPLES / "quota-saver.toml", env=ENV)
    request = load_captured(capture)
    route = ruleset.resolve(request.model or "", RequestFacts.from_headers(request.header_dict))
    assert route is not None
    assert (route.to[0].provider.name, route.to[0].upstream_model(request.model)) == (provider, upstream_model)


def test_quota_saver_spills_the_main_conversation_and_keeps_server_tools_on_anthropic() -> None:
    ruleset = load_file(EXAMPLES / "quota-saver.toml", env=ENV)
    main = ruleset.resolve("claude-opus-5-5", RequestFacts("main"))
    assert main is not None and main.to[0].spill_at == (("5h", 0.95), ("7d", 0.85))
    for request_class in ("compaction", "auxiliary", "subagent"):
        helper = ruleset.resolve("claude-haiku-5-5", RequestFacts(request_class))
        assert helper is not None and [t.provider.name for t in helper.to] == ["zai"]
    for request_class in ("main", "subagent", "unknown"):
        searching = ruleset.resolve("claude-sonnet-5-5", RequestFacts(request_class, server_tools=True))
        assert searching is not None and [(t.provider.name, t.spill_at) for t in searching.to] == [("anthropic", ())]
