"""rules.presets: the table, what a preset fills, where each value came from, and preset_for_url."""

from __future__ import annotations

from typing import Any

import pytest

from rules.errors import ConfigError
from rules.loader import compile_document, load_bytes
from rules.model import KeySource, Provider
from rules.presets import PRESETS, apply_preset, preset_for_url
from schemas import load_schema

# DESIGN.md section 11, in its order.
NAMES = ["anthropic", "zai", "zai-china", "deepseek", "moonshot", "minimax", "dashscope", "openrouter", "ollama", "vllm"]


def provider(table: dict[str, Any], env: dict[str, str] | None = None) -> Provider:
    doc = {"version": 1, "providers": {"p": table}, "route": [{"match": "*", "to": "p"}]}
    return compile_document(doc, env=env).providers["p"]


def test_the_presets_are_the_designed_ones() -> None:
    assert list(PRESETS) == NAMES
    assert all(name == preset.name for name, preset in PRESETS.items())


def test_the_schema_describes_each_preset_as_the_table_does() -> None:
    branches = load_schema()["$defs"]["provider"]["properties"]["preset"]["anyOf"]
    assert [b["const"] for b in branches] == NAMES
    # The descriptions editors show come from the table: edit presets.py, then the schema.
    assert {b["const"]: b["description"] for b in branches} == {n: p.describe() for n, p in PRESETS.items()}


@pytest.mark.parametrize("name", NAMES)
def test_each_preset_loads_and_gives_its_values(name: str) -> None:
    preset = PRESETS[name]
    table: dict[str, Any] = {"preset": name}
    if preset.needs_key:
        table["key"] = {"env": "SOME_KEY"}
    if preset.base_url is None:
        table["base_url"] = "http://127.0.0.1:8000"
    p = provider(table)
    assert p.preset == name
    assert p.base_url == (preset.base_url or "http://127.0.0.1:8000")
    written = {"auth": p.auth, "system_turns": p.system_turns, "tool_choice": p.tool_choice, "thinking": p.thinking}
    for key, value in preset.values.items():
        if key in written:
            assert written[key] == value, key
    assert p.count_tokens.mode == preset.values.get("count_tokens", "forward")
    assert p.betas.mode == preset.values.get("betas", "forward")
    assert p.drop_fields == preset.values.get("drop_fields", ())
    assert p.key == ((KeySource("env", "SOME_KEY"),) if preset.needs_key else ())


def test_the_zai_preset_carries_the_policy_the_zai_profiles_wrote() -> None:
    p = provider({"preset": "zai", "key": {"env": "ZAI_API_KEY"}})
    assert p.base_url == "https://api.z.ai/api/anthropic"
    assert (p.system_turns, p.tool_choice, p.betas.mode, p.count_tokens.mode) == ("merge", "auto", "drop", "estimate")
    assert set(p.drop_fields) == {"context_management", "output_config"}
    assert p.auth is None  # x-api-key for an env key, as before
    china = provider({"preset": "zai-china", "key": {"env": "K"}})
    assert china.base_url == "https://open.bigmodel.cn/api/anthropic"
    assert china.policy() == p.policy()


def test_every_key_written_beside_a_preset_wins() -> None:
    p = provider(
        {
            "preset": "zai",
            "base_url": "https://zai-proxy.example.com/api/anthropic/",
            "key": {"env": "K"},
            "auth": "bearer",
            "system_turns": "keep",
            "betas": ["context-1m-2025-08-07"],
            "count_tokens": "forward",
            "drop_fields": [],
        }
    )
    assert p.base_url == "https://zai-proxy.example.com/api/anthropic"
    assert (p.auth, p.system_turns, p.count_tokens.mode, p.drop_fields) == ("bearer", "keep", "forward", ())
    assert p.betas.mode == "allow" and p.betas.allowed == {"context-1m-2025-08-07"}
    assert p.tool_choice == "auto"  # not written: still the preset's


def test_origin_says_file_preset_or_default() -> None:
    p = provider({"preset": "zai", "key": {"env": "K"}, "tool_choice": "keep", "timeout_s": 30})
    assert p.origin("base_url") == "preset zai"
    assert p.origin("key") == "file"
    assert p.origin("system_turns") == "preset zai"
    assert p.origin("tool_choice") == "file"
    assert p.origin("timeout_s") == "file"
    assert p.origin("thinking") == "default"
    assert p.origin("strip_cache_control") == "default"
    assert p.origins == {
        "base_url": "preset zai", "key": "file", "betas": "preset zai", "system_turns": "preset zai",
        "tool_choice": "file", "count_tokens": "preset zai", "drop_fields": "preset zai", "timeout_s": "file",
    }
    plain = provider({"base_url": "https://a.example", "key": {"env": "K"}, "thinking": "strip"})
    assert plain.preset is None
    assert plain.origins == {"base_url": "file", "key": "file", "thinking": "file"}
    assert plain.origin("system_turns") == "default"


def test_origins_know_every_provider_key_of_the_schema() -> None:
    from rules.model import _PROVIDER_KEYS

    properties = list(load_schema()["$defs"]["provider"]["properties"])
    assert ["preset", *_PROVIDER_KEYS] == properties


def test_provenance_does_not_change_equality() -> None:
    # The same values from a preset or from the file: the same provider for every request.
    from_preset = provider({"preset": "deepseek", "key": {"env": "K"}})
    by_hand = provider(
        {"preset": "deepseek", "base_url": "https://api.deepseek.com/anthropic", "key": {"env": "K"}, "auth": "x-api-key"}
    )
    assert from_preset == by_hand and hash(from_preset) == hash(by_hand)
    assert from_preset.origin("auth") != by_hand.origin("auth")


def test_keyless_presets_send_no_credential_unless_a_key_is_written() -> None:
    ollama = provider({"preset": "ollama"})
    assert ollama.key == () and ollama.base_url == "http://localhost:11434"
    assert ollama.origin("key") == "preset ollama"
    with_key = provider({"preset": "vllm", "base_url": "http://gpu:8000", "key": {"env": "VLLM_API_KEY"}})
    assert with_key.key == (KeySource("env", "VLLM_API_KEY"),) and with_key.origin("key") == "file"


def test_a_provider_without_preset_still_needs_base_url_and_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_bytes(b'version = 1\n[providers.p]\nthinking = "keep"\n[[route]]\nmatch = "*"\nto = "p"\n')
    assert [p.message for p in info.value.problems] == ["missing required key 'base_url'", "missing required key 'key'"]


def test_apply_preset_leaves_its_argument_alone() -> None:
    table = {"preset": "minimax", "key": {"env": "K"}}
    merged = apply_preset(table)
    assert table == {"preset": "minimax", "key": {"env": "K"}}
    assert merged["base_url"] == "https://api.minimax.io/anthropic" and merged["system_turns"] == "merge"
    plain = {"base_url": "https://a.example"}
    assert apply_preset(plain) is plain


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://api.anthropic.com", "anthropic"),
        ("https://api.z.ai/api/anthropic", "zai"),
        ("https://API.Z.AI/api/anthropic/", "zai"),
        ("https://api.z.ai/api/paas/v4", "zai"),  # the same provider, so the same error dialect
        ("https://open.bigmodel.cn/api/anthropic", "zai-china"),
        ("https://api.deepseek.com/anthropic", "deepseek"),
        ("https://api.moonshot.ai/anthropic", "moonshot"),
        ("https://api.kimi.com/coding", "moonshot"),
        ("https://api.minimax.io/anthropic", "minimax"),
        ("https://api.minimaxi.com/anthropic", "minimax"),
        ("https://dashscope-intl.aliyuncs.com/apps/anthropic", "dashscope"),
        ("https://coding-intl.dashscope.aliyuncs.com/apps/anthropic", "dashscope"),
        ("https://openrouter.ai/api", "openrouter"),
        ("https://api.z.ai.:443/api/anthropic", "zai"),
        ("http://localhost:11434", None),
        ("http://127.0.0.1:8000", None),
        ("https://z.ai.example.com/api", None),
        ("https://evil-api.z.ai.example.com", None),
        ("api.z.ai/api/anthropic", None),
        ("http://[::1", None),
        ("", None),
    ],
)
def test_preset_for_url_knows_providers_by_host(url: str, name: str | None) -> None:
    assert preset_for_url(url) == name


def test_every_public_preset_url_maps_back_to_its_preset() -> None:
    for name, preset in PRESETS.items():
        if preset.hosts:
            assert preset.base_url is not None and preset_for_url(preset.base_url) == name
        else:
            assert name in ("ollama", "vllm")  # local servers: no host names them
