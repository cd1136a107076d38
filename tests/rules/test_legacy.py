"""rules.legacy: the original proxy's HAIKU_/SONNET_/OPUS_PROVIDER_* variables as rules."""

from __future__ import annotations

from typing import Any

import pytest

from rules.errors import ConfigError
from rules.legacy import (
    ANTHROPIC_BASE_URL,
    LEGACY_TIERS,
    anthropic_base_url,
    legacy_base_url_variables,
    legacy_configured,
    legacy_document,
    legacy_header,
    load_legacy,
)
from rules.model import KeySource

ZAI = "https://api.z.ai/api/anthropic"

ANTHROPIC_PROVIDER = {
    "base_url": ANTHROPIC_BASE_URL,
    "key": [{"oauth_file": True}, {"client": True}],
}
DEFAULT_ROUTE = {"name": "default", "match": "*", "to": "anthropic"}


def tier_env(tier: str, url: str = ZAI, key: str = "sk-secret-value-0123456789") -> dict[str, str]:
    return {f"{tier.upper()}_PROVIDER_BASE_URL": url, f"{tier.upper()}_PROVIDER_API_KEY": key}


def route_of(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in doc["route"] if r["name"] == name)


def error_of(env: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        legacy_document(env)
    return info.value


# --- which environment counts -------------------------------------------------------------

def test_legacy_configured_needs_a_non_blank_base_url() -> None:
    assert not legacy_configured({})
    assert not legacy_configured({"HAIKU_PROVIDER_API_KEY": "k", "ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.7"})
    assert not legacy_configured({"HAIKU_PROVIDER_BASE_URL": ""})
    assert not legacy_configured({"HAIKU_PROVIDER_BASE_URL": "  \t"})
    assert not legacy_configured({"haiku_provider_base_url": ZAI})  # the names are upper-case
    for tier in LEGACY_TIERS:
        assert legacy_configured({f"{tier.upper()}_PROVIDER_BASE_URL": ZAI})


def test_legacy_base_url_variables_in_tier_order() -> None:
    env = {"OPUS_PROVIDER_BASE_URL": ZAI, "HAIKU_PROVIDER_BASE_URL": ZAI, "SONNET_PROVIDER_BASE_URL": ""}
    assert legacy_base_url_variables(env) == ("HAIKU_PROVIDER_BASE_URL", "OPUS_PROVIDER_BASE_URL")


# --- the document ---------------------------------------------------------------------------

def test_no_tier_gives_only_anthropic_and_the_catch_all() -> None:
    assert legacy_document({}) == {
        "version": 1,
        "providers": {"anthropic": ANTHROPIC_PROVIDER},
        "route": [DEFAULT_ROUTE],
    }


@pytest.mark.parametrize("tier", LEGACY_TIERS)
def test_one_tier_without_default_model_name(tier: str) -> None:
    doc = legacy_document(tier_env(tier))
    assert doc["providers"] == {
        tier: {"preset": "zai", "base_url": ZAI, "key": {"env": f"{tier.upper()}_PROVIDER_API_KEY"}, "auth": "x-api-key"},
        "anthropic": ANTHROPIC_PROVIDER,
    }
    assert doc["route"] == [{"name": tier, "match": [f"*{tier}*"], "to": tier}, DEFAULT_ROUTE]


@pytest.mark.parametrize("tier", LEGACY_TIERS)
def test_one_tier_with_default_model_name(tier: str) -> None:
    env = tier_env(tier) | {f"ANTHROPIC_DEFAULT_{tier.upper()}_MODEL": "glm-4.7"}
    doc = legacy_document(env)
    assert doc["route"][0] == {"name": tier, "match": ["glm-4.7", f"*{tier}*"], "to": tier}


def test_all_tiers_in_order_haiku_sonnet_opus_then_default() -> None:
    env = tier_env("opus") | tier_env("haiku") | tier_env("sonnet", url="http://127.0.0.1:9000")
    doc = legacy_document(env)
    assert [r["name"] for r in doc["route"]] == ["haiku", "sonnet", "opus", "default"]
    assert list(doc["providers"]) == ["haiku", "sonnet", "opus", "anthropic"]
    assert doc["providers"]["sonnet"]["base_url"] == "http://127.0.0.1:9000"


def test_a_known_providers_url_gets_its_preset_and_any_other_url_none() -> None:
    env = tier_env("haiku") | tier_env("sonnet", url="http://127.0.0.1:9000") | tier_env("opus", url="https://api.deepseek.com/anthropic/")
    doc = legacy_document(env)
    assert doc["providers"]["haiku"]["preset"] == "zai"
    assert "preset" not in doc["providers"]["sonnet"]
    assert doc["providers"]["opus"] == {
        "preset": "deepseek",
        "base_url": "https://api.deepseek.com/anthropic",
        "key": {"env": "OPUS_PROVIDER_API_KEY"},
        "auth": "x-api-key",
    }


def test_the_seed_setup_compiles_to_zais_wire_policy() -> None:
    # HAIKU on Z.AI, as the original proxy's README set it up: no longer a provider without policy.
    rules = load_legacy(tier_env("haiku") | {"ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.7"})
    haiku = rules.providers["haiku"]
    assert haiku.preset == "zai" and haiku.base_url == ZAI
    assert haiku.system_turns == "merge" and haiku.tool_choice == "auto" and haiku.betas.mode == "drop"
    assert haiku.count_tokens.mode == "estimate"
    assert set(haiku.drop_fields) == {"context_management", "output_config"}
    assert haiku.auth == "x-api-key"  # as the original proxy sent it, not the preset's choice
    assert haiku.origin("system_turns") == "preset zai" and haiku.origin("auth") == "file"
    assert rules.providers["anthropic"].preset is None


def test_default_model_name_of_an_unconfigured_tier_is_ignored() -> None:
    env = tier_env("haiku") | {"ANTHROPIC_DEFAULT_OPUS_MODEL": "glm-4.5-air"}
    doc = legacy_document(env)
    assert [r["name"] for r in doc["route"]] == ["haiku", "default"]
    assert "glm-4.5-air" not in str(doc)


def test_key_is_referenced_never_copied() -> None:
    doc = legacy_document(tier_env("haiku", key="sk-very-secret-key-abcdef"))
    assert "sk-very-secret-key-abcdef" not in repr(doc)


def test_values_are_stripped_and_the_trailing_slash_dropped() -> None:
    env = {
        "HAIKU_PROVIDER_BASE_URL": f" {ZAI}/\r",
        "HAIKU_PROVIDER_API_KEY": "k",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": " glm-4.7\r",
    }
    doc = legacy_document(env)
    assert doc["providers"]["haiku"]["base_url"] == ZAI
    assert doc["route"][0]["match"] == ["glm-4.7", "*haiku*"]


def test_empty_default_model_name_counts_as_unset() -> None:
    doc = legacy_document(tier_env("haiku") | {"ANTHROPIC_DEFAULT_HAIKU_MODEL": ""})
    assert doc["route"][0]["match"] == ["*haiku*"]


def test_one_m_suffix_is_dropped_since_claude_code_does_not_send_it() -> None:
    doc = legacy_document(tier_env("sonnet") | {"ANTHROPIC_DEFAULT_SONNET_MODEL": "glm-4.6[1M]"})
    assert doc["route"][0]["match"] == ["glm-4.6", "*sonnet*"]


def test_glob_characters_in_a_model_name_are_escaped() -> None:
    doc = legacy_document(tier_env("haiku") | {"ANTHROPIC_DEFAULT_HAIKU_MODEL": "my*model?[x]"})
    assert doc["route"][0]["match"] == ["my[*]model[?][[]x]", "*haiku*"]


def test_duplicate_default_model_name_stays_with_the_first_tier() -> None:
    env = tier_env("haiku") | tier_env("opus") | {
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.7",
        "ANTHROPIC_DEFAULT_OPUS_MODEL": "GLM-4.7",
    }
    doc = legacy_document(env)
    assert route_of(doc, "haiku")["match"] == ["glm-4.7", "*haiku*"]
    assert route_of(doc, "opus")["match"] == ["*opus*"]


# --- errors ----------------------------------------------------------------------------------

def test_base_url_without_key_names_the_variable_and_the_fix() -> None:
    err = error_of({"HAIKU_PROVIDER_BASE_URL": ZAI})
    assert len(err.problems) == 1
    assert err.path == "HAIKU_PROVIDER_API_KEY"
    assert err.file == "<environment>"
    assert "HAIKU_PROVIDER_BASE_URL is set but HAIKU_PROVIDER_API_KEY is not" in err.message
    assert "set HAIKU_PROVIDER_API_KEY" in err.message
    assert "unset HAIKU_PROVIDER_BASE_URL" in err.message


def test_empty_key_counts_as_unset() -> None:
    err = error_of({"SONNET_PROVIDER_BASE_URL": ZAI, "SONNET_PROVIDER_API_KEY": " "})
    assert err.path == "SONNET_PROVIDER_API_KEY"


def test_every_missing_key_is_reported_at_once() -> None:
    err = error_of({"HAIKU_PROVIDER_BASE_URL": ZAI, "OPUS_PROVIDER_BASE_URL": ZAI})
    assert [p.path for p in err.problems] == ["HAIKU_PROVIDER_API_KEY", "OPUS_PROVIDER_API_KEY"]
    assert str(err).count("\n") == 1  # one line per problem


def test_base_url_that_is_not_http_is_an_error_quoting_it() -> None:
    err = error_of(tier_env("opus", url="api.z.ai/api/anthropic"))
    assert err.path == "OPUS_PROVIDER_BASE_URL"
    assert "'api.z.ai/api/anthropic'" in err.message
    assert "http" in err.message


def test_a_key_pasted_into_the_url_variable_is_not_quoted() -> None:
    secret = "sk-ant-api03-Zq8xWv2LmN4pR7tY9uB1cD3eF5gH6jK0"
    err = error_of({"HAIKU_PROVIDER_BASE_URL": secret, "HAIKU_PROVIDER_API_KEY": "k"})
    assert err.path == "HAIKU_PROVIDER_BASE_URL"
    assert err.message == (
        "HAIKU_PROVIDER_BASE_URL holds what looks like a key ('sk-ant-...', not shown), not a URL; "
        "set it to the provider's base URL, e.g. https://api.z.ai/api/anthropic"
    )


def test_urls_in_messages_lose_their_credentials_and_query() -> None:
    err = error_of({"HAIKU_PROVIDER_BASE_URL": "https://me:hunter2@api.z.ai/api/anthropic?key=s3cr3t"})
    assert "hunter2" not in str(err) and "s3cr3t" not in str(err)
    assert "API key of https://api.z.ai/api/anthropic?key=..." in err.message


# --- GATEWAY_ANTHROPIC_BASE_URL ----------------------------------------------------------------

def test_gateway_anthropic_base_url_replaces_anthropic() -> None:
    env = tier_env("haiku") | {"GATEWAY_ANTHROPIC_BASE_URL": "http://127.0.0.1:8999/"}
    doc = legacy_document(env)
    assert doc["providers"]["anthropic"]["base_url"] == "http://127.0.0.1:8999"
    assert doc["providers"]["haiku"]["base_url"] == ZAI
    assert anthropic_base_url(env) == "http://127.0.0.1:8999"


def test_empty_gateway_anthropic_base_url_counts_as_unset() -> None:
    assert anthropic_base_url({"GATEWAY_ANTHROPIC_BASE_URL": ""}) == ANTHROPIC_BASE_URL
    assert legacy_document({"GATEWAY_ANTHROPIC_BASE_URL": " "})["providers"]["anthropic"] == ANTHROPIC_PROVIDER


def test_bad_gateway_anthropic_base_url_is_an_error() -> None:
    err = error_of({"GATEWAY_ANTHROPIC_BASE_URL": "localhost:8999"})
    assert err.path == "GATEWAY_ANTHROPIC_BASE_URL"
    with pytest.raises(ConfigError, match="GATEWAY_ANTHROPIC_BASE_URL='localhost:8999'"):
        anthropic_base_url({"GATEWAY_ANTHROPIC_BASE_URL": "localhost:8999"})


# --- the RuleSet -----------------------------------------------------------------------------

def test_load_legacy_routes_claude_code_model_names() -> None:
    env = tier_env("haiku") | tier_env("opus") | {"ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.7"}
    rules = load_legacy(env)
    assert rules.source.kind == "env"
    assert rules.warnings == ()

    def provider(model: str) -> str:
        route = rules.resolve(model)
        assert route is not None
        return route.to[0].provider.name

    assert provider("claude-haiku-5-5") == "haiku"
    assert provider("claude-3-5-haiku-20241022") == "haiku"
    assert provider("glm-4.7") == "haiku"
    assert provider("GLM-4.7") == "haiku"
    assert provider("claude-sonnet-5-5") == "anthropic"  # sonnet not configured
    assert provider("claude-opus-5-5") == "opus"
    assert provider("claude-haiku-distilled-from-opus") == "haiku"  # haiku first, as the original
    assert provider("gpt-5") == "anthropic"
    assert rules.resolve("claude-haiku-5-5").to[0].model is None  # type: ignore[union-attr]


def test_load_legacy_keys_and_auth() -> None:
    rules = load_legacy(tier_env("sonnet"))
    sonnet, anthropic = rules.providers["sonnet"], rules.providers["anthropic"]
    assert sonnet.key == (KeySource("env", "SONNET_PROVIDER_API_KEY"),)
    assert sonnet.auth == "x-api-key"
    assert anthropic.key == (KeySource("oauth_file", ""), KeySource("client"))  # file first
    assert anthropic.base_url == ANTHROPIC_BASE_URL


def test_load_legacy_escaped_model_name_matches_only_itself() -> None:
    rules = load_legacy(tier_env("haiku") | {"ANTHROPIC_DEFAULT_HAIKU_MODEL": "my*model"})
    assert rules.resolve("my*model").name == "haiku"  # type: ignore[union-attr]
    assert rules.resolve("myXmodel").name == "default"  # type: ignore[union-attr]


def test_load_legacy_warns_about_a_key_without_its_url() -> None:
    rules = load_legacy({"OPUS_PROVIDER_API_KEY": "k"})
    assert [(w.path, w.severity) for w in rules.warnings] == [("OPUS_PROVIDER_API_KEY", "warning")]
    assert "OPUS_PROVIDER_BASE_URL is not" in rules.warnings[0].message
    assert rules.resolve("claude-opus-5-5").name == "default"  # type: ignore[union-attr]


def test_load_legacy_warns_about_a_model_name_an_earlier_tier_takes() -> None:
    env = tier_env("haiku") | tier_env("sonnet") | {"ANTHROPIC_DEFAULT_SONNET_MODEL": "claude-haiku-4-5"}
    rules = load_legacy(env)
    (warning,) = rules.warnings
    assert warning.path == "ANTHROPIC_DEFAULT_SONNET_MODEL"
    assert "already routed to haiku (matched by '*haiku*')" in warning.message
    assert rules.resolve("claude-haiku-4-5").name == "haiku"  # type: ignore[union-attr]


def test_load_legacy_raises_like_legacy_document() -> None:
    with pytest.raises(ConfigError) as info:
        load_legacy({"HAIKU_PROVIDER_BASE_URL": ZAI})
    assert info.value.path == "HAIKU_PROVIDER_API_KEY"


# --- the header ------------------------------------------------------------------------------

def test_header_names_the_variables_used_and_no_secret() -> None:
    env = tier_env("haiku", key="sk-very-secret-key-abcdef") | {
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.7",
        "ANTHROPIC_DEFAULT_OPUS_MODEL": "ignored",
    }
    header = legacy_header(env)
    assert "HAIKU_PROVIDER_BASE_URL, HAIKU_PROVIDER_API_KEY, ANTHROPIC_DEFAULT_HAIKU_MODEL" in header
    assert "ANTHROPIC_DEFAULT_OPUS_MODEL" not in header
    assert "sk-very-secret" not in header
    assert "--from-env" in header


def test_header_says_which_presets_the_urls_got() -> None:
    assert "`preset` (zai): " in legacy_header(tier_env("haiku"))
    assert "`preset`" not in legacy_header(tier_env("haiku", url="http://127.0.0.1:9000"))
