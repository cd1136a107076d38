"""Provider presets: a base URL and wire-policy values per provider, from their documentation.

``preset = "zai"`` on a provider fills the keys below; every key written beside it wins::

    [providers.zai]
    preset = "zai"                     # base_url, system_turns, tool_choice, betas, ...
    key = { env = "ZAI_API_KEY" }
    count_tokens = { via = "anthropic" }   # written here: wins over the preset's "estimate"

The facts come from the providers' public documentation and issue trackers, collected in
docs/providers.md; each value says where it comes from and whether it is documented or
assumed. docs/providers.md shows the same table for users, and the JSON Schema
describes each preset with ``Preset.describe()`` (a test keeps the two equal).

A preset whose ``needs_key`` is False (ollama, vllm) makes ``key`` optional: a provider that
leaves it out has an empty key chain, which means "send no credential at all".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["PRESETS", "Preset", "Value", "apply_preset", "preset_for_url"]

Value = str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Preset:
    """One provider's documented defaults, in routes.toml's own keys and values."""

    name: str
    title: str  # who it is, for the schema and the docs
    base_url: str | None  # None: no public address (vllm): the file must give base_url
    values: Mapping[str, Value]  # auth and wire-policy keys it fills, as routes.toml spells them
    needs_key: bool = True  # False: `key` may be left out, and then no credential is sent
    key_example: str | None = None  # the `key` messages and docs suggest (needs_key presets)
    hosts: tuple[str, ...] = ()  # base URL hosts that identify it (preset_for_url)

    def fills(self, key: str) -> bool:
        """Whether this preset supplies ``key`` (a routes.toml provider key) when the file omits it."""
        if key == "base_url":
            return self.base_url is not None
        if key == "key":
            return not self.needs_key  # "no credential" is the preset's answer
        return key in self.values

    def describe(self) -> str:
        """One paragraph for editors (the JSON Schema) and the docs: where, and what it changes."""
        where = self.base_url or "no public address, so give base_url (your server's address)"
        sets = ", ".join(f"{k} = {_toml(v)}" for k, v in self.values.items())
        key = (
            f"Needs a key, such as key = {self.key_example}."
            if self.needs_key
            else "No key needed: leave key out and no credential is sent."
        )
        return f"{self.title}: {where}. Sets {sets or 'no wire policy (requests forwarded as sent)'}. {key}"


def _toml(value: Value) -> str:
    # Only strings and lists of strings: JSON's spelling of them is TOML's.
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def _values(**values: Value) -> Mapping[str, Value]:
    return MappingProxyType(values)


# No provider below documents /v1/messages/count_tokens; Claude Code calls it in bursts and
# `/context` depends on it, and a 404 from a provider breaks both. So every preset but
# anthropic answers it locally: count_tokens = "estimate" (assumed, for all of them).
_ESTIMATE = "estimate"

# Z.AI's policy, global and China endpoints alike (the same service).
_ZAI_POLICY = _values(
    # Documented by the public GLM issue tracker: a role "system" turn in messages[] gets
    # HTTP 422 with a FastAPI body, not Anthropic's (glm-4.6, glm-5.1).
    system_turns="merge",
    # Assumed: the policy the project's Z.AI profiles carried (mixed.toml), no fact in
    # docs/providers.md; a forced tool_choice is rewritten to auto.
    tool_choice="auto",
    # Assumed (profiles): Claude Code's anthropic-beta values name Anthropic-only features.
    betas="drop",
    # Assumed (profiles): Anthropic-only body fields. Note docs/providers.md reports (third
    # party) that GLM-5.x accepts output_config.effort: write drop_fields to keep it.
    drop_fields=("context_management", "output_config"),
    count_tokens=_ESTIMATE,
)

PRESETS: Mapping[str, Preset] = MappingProxyType({
    # Anthropic itself: accepts all of what Claude Code sends (documented: it is the API).
    # No auth: the key source decides (x-api-key for env/value, Bearer for oauth_file, the
    # client's own form for client; docs/configuration.md, "Key sources").
    "anthropic": Preset(
        "anthropic", "Anthropic", "https://api.anthropic.com", _values(),
        key_example="[{ client = true }, { oauth_file = true }]", hosts=("api.anthropic.com",),
    ),
    # Z.AI (GLM), global endpoint (documented, docs/providers.md).
    "zai": Preset(
        "zai", "Z.AI (GLM), global", "https://api.z.ai/api/anthropic",
        _ZAI_POLICY,
        # auth not set, so x-api-key for an env key: what the original proxy and the legacy
        # environment always sent (reported to work, unverified). Z.AI's guide sets
        # ANTHROPIC_AUTH_TOKEN (Bearer, documented): write auth = "bearer" for that.
        key_example='{ env = "ZAI_API_KEY" }', hosts=("api.z.ai",),
    ),
    # Z.AI's China endpoint, open.bigmodel.cn (documented, docs/providers.md): the same
    # service, so the same policy and sources as zai.
    "zai-china": Preset(
        "zai-china", "Z.AI (GLM), China (bigmodel.cn)", "https://open.bigmodel.cn/api/anthropic",
        _ZAI_POLICY,
        key_example='{ env = "BIGMODEL_API_KEY" }', hosts=("open.bigmodel.cn",),
    ),
    # DeepSeek (documented, docs/providers.md): x-api-key; it ignores anthropic-beta,
    # anthropic-version, container and mcp_servers itself, so nothing needs dropping.
    "deepseek": Preset(
        "deepseek", "DeepSeek", "https://api.deepseek.com/anthropic",
        _values(auth="x-api-key", count_tokens=_ESTIMATE),
        key_example='{ env = "DEEPSEEK_API_KEY" }', hosts=("api.deepseek.com",),
    ),
    # Moonshot (Kimi) (documented base URL, docs/providers.md; auth unverified, so the
    # key source decides). It takes adaptive thinking with effort: output_config stays.
    "moonshot": Preset(
        "moonshot", "Moonshot (Kimi)", "https://api.moonshot.ai/anthropic",
        _values(count_tokens=_ESTIMATE),
        key_example='{ env = "MOONSHOT_API_KEY" }', hosts=("api.moonshot.ai", "api.kimi.com"),
    ),
    # MiniMax (documented, docs/providers.md): role "system" in messages[] is refused
    # (400, code 2013). Its own thinking must come back whole: the default thinking =
    # "foreign" keeps the blocks it issued and removes only other providers'.
    "minimax": Preset(
        "minimax", "MiniMax", "https://api.minimax.io/anthropic",
        _values(system_turns="merge", count_tokens=_ESTIMATE),
        key_example='{ env = "MINIMAX_API_KEY" }', hosts=("api.minimax.io", "api.minimaxi.com"),
    ),
    # Alibaba Model Studio (Qwen) (documented, docs/providers.md): role "system" in
    # messages[] is refused (400 "Request body format invalid").
    "dashscope": Preset(
        "dashscope", "Alibaba Model Studio (Qwen), international", "https://dashscope-intl.aliyuncs.com/apps/anthropic",
        _values(system_turns="merge", count_tokens=_ESTIMATE),
        key_example='{ env = "DASHSCOPE_API_KEY" }',
        hosts=("dashscope-intl.aliyuncs.com", "coding-intl.dashscope.aliyuncs.com"),
    ),
    # OpenRouter (documented, docs/providers.md): Bearer; the Anthropic wire format is
    # only guaranteed with Anthropic as the underlying provider, so nothing else is changed.
    "openrouter": Preset(
        "openrouter", "OpenRouter", "https://openrouter.ai/api",
        _values(auth="bearer", count_tokens=_ESTIMATE),
        key_example='{ env = "OPENROUTER_API_KEY" }', hosts=("openrouter.ai",),
    ),
    # Ollama 0.14+ (documented, docs/providers.md): local, no /v1 in the base URL, no key.
    # localhost is not an identity, so no host maps to it.
    "ollama": Preset(
        "ollama", "Ollama (local)", "http://localhost:11434",
        _values(count_tokens=_ESTIMATE), needs_key=False,
    ),
    # vLLM, or llama.cpp's llama-server (documented, docs/providers.md): native
    # /v1/messages at the server's own address, no key unless it was started with one.
    "vllm": Preset(
        "vllm", "vLLM or llama.cpp's llama-server (your own server)", None,
        _values(count_tokens=_ESTIMATE), needs_key=False,
    ),
})

_BY_HOST: Mapping[str, str] = {host: p.name for p in PRESETS.values() for host in p.hosts}


def preset_for_url(url: str) -> str | None:
    """The preset whose provider serves ``url``, by its host: ``https://api.z.ai/x`` -> ``"zai"``.

    None for any other host, for local addresses (ollama and vllm have no identifying host),
    and for text that is not a URL. Pure: no lookups.
    """
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return _BY_HOST.get(host.rstrip(".")) if host else None


def apply_preset(table: Mapping[str, Any]) -> Mapping[str, Any]:
    """A provider table with its preset's values under the keys it writes itself.

    ``{"preset": "zai", "key": ...}`` -> base_url, system_turns, ... of zai, and key. A table
    without ``preset`` is returned as it is. The name must be a known preset (the schema
    refuses others).
    """
    name = table.get("preset")
    if name is None:
        return table
    preset = PRESETS[str(name)]
    merged: dict[str, Any] = dict(preset.values)
    if preset.base_url is not None:
        merged["base_url"] = preset.base_url
    merged.update(table)
    return merged
