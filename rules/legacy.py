"""The original proxy's environment variables, read as a routes.toml document.

People who used the original proxy configured it with variables only, for example::

    HAIKU_PROVIDER_BASE_URL=https://api.z.ai/api/anthropic
    HAIKU_PROVIDER_API_KEY=...
    ANTHROPIC_DEFAULT_HAIKU_MODEL=glm-4.7     # also read by Claude Code: what it sends for "haiku"

The same variables, unchanged, route the same way here. They become::

    [providers.haiku]                         # one per tier whose T_PROVIDER_BASE_URL is set
    preset = "zai"                            # api.z.ai is Z.AI: its documented wire policy
    key = { env = "HAIKU_PROVIDER_API_KEY" }
    auth = "x-api-key"

    [providers.anthropic]
    base_url = "https://api.anthropic.com"    # or $GATEWAY_ANTHROPIC_BASE_URL
    key = [{ oauth_file = true }, { client = true }]

    [[route]]
    name = "haiku"
    match = ["glm-4.7", "*haiku*"]
    to = "haiku"

    [[route]]
    name = "default"
    match = "*"
    to = "anthropic"

Decisions, and why (what a user of the original proxy expects):

- An empty or blank variable counts as unset: ``.env`` templates ship ``SONNET_PROVIDER_BASE_URL=``
  lines, and the original tested the values for truth. Values are stripped of surrounding
  blanks, since a stray space or a CR from a Windows-edited ``.env`` would otherwise end up in a
  URL or a model name.
- The API key is referenced, never copied: ``{ env = "HAIKU_PROVIDER_API_KEY" }``. So
  ``gateway routes --from-env`` prints no secret, and the rendered file keeps working when the
  key is rotated in the environment.
- A base URL without its API key is an error naming the variable: the original sent such
  requests without credentials, and the user found out from a 401 in the middle of a session.
  An API key without its base URL leaves that tier on Anthropic, as in the original; a warning
  says so, since it is usually a typo in the URL variable's name.
- A base URL must start with ``http://`` or ``https://``; a trailing ``/`` is dropped.
- The tiers are routed in the order haiku, sonnet, opus (the first matching route wins): a
  name containing two tier words, such as ``claude-haiku-distilled-from-opus``, goes to haiku,
  as in the original, which tested haiku first.
- ``ANTHROPIC_DEFAULT_T_MODEL`` is matched as an exact name (case-insensitive, like every
  pattern). Glob characters in it are escaped, so it stays a name. A trailing ``[1m]`` (Claude
  Code's marker for the 1M-context variant, which Claude Code removes before sending) is
  dropped. It is only read for tiers that have a base URL: for the others the catch-all sends
  the name to Anthropic unchanged, which is what the original did. A name that an earlier tier
  already matches (the same name twice, or ``ANTHROPIC_DEFAULT_SONNET_MODEL=claude-haiku-4-5``
  with a haiku provider) is left out of the later route, with a warning: the model name is the
  only thing the gateway sees, and the earlier route gets it.
- The model name is sent upstream unchanged (no ``model =`` rewrite), as in the original: the
  user sets ``ANTHROPIC_DEFAULT_HAIKU_MODEL=glm-4.7`` precisely so that Claude Code sends the
  provider's own model name.
- The ``anthropic`` key tries the OAuth file first and then the client's credentials: the
  original always used the Claude subscription login it found on disk, and Claude Code users
  of the original often set a dummy ``ANTHROPIC_API_KEY`` that must not win over it.
- A base URL whose host is a known provider's (``preset_for_url``: api.z.ai, api.deepseek.com,
  ...) gets that provider's preset, so its wire policy (betas, system_turns, count_tokens, ...)
  is the documented one: the seed setup, Haiku on Z.AI, otherwise sends Claude Code's
  ``role: "system"`` turns and Anthropic-only fields to a provider that refuses them. The URL
  itself and ``auth = "x-api-key"`` stay as the variables and the original proxy had them.
  Any other URL keeps the default policy: the variables say nothing about it.
- Messages never quote a value that looks like a key (a key pasted into a URL variable), and
  show URLs without user name, password, query and fragment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from rules.errors import ConfigError, Problem
from rules.matching import Matcher
from rules.model import ConfigSource, RuleSet
from rules.presets import preset_for_url
from rules.redact import concealed, looks_secret, safe_url
from rules.schema_messages import show

__all__ = [
    "ANTHROPIC_BASE_URL",
    "ENV_FILE",
    "LEGACY_TIERS",
    "anthropic_base_url",
    "legacy_base_url_variables",
    "legacy_configured",
    "legacy_document",
    "legacy_header",
    "load_legacy",
]

LEGACY_TIERS = ("haiku", "sonnet", "opus")
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
# The "file" of problems found in the environment: Problem renders it as "<environment>: VAR: ...".
ENV_FILE = "<environment>"

_ONE_M_SUFFIX = "[1m]"
_GLOB_ESCAPES = {"*": "[*]", "?": "[?]", "[": "[[]"}


def _get(env: Mapping[str, str], name: str) -> str:
    """The variable's value, stripped; "" when unset or blank."""
    return (env.get(name) or "").strip()


def _base_url_var(tier: str) -> str:
    return f"{tier.upper()}_PROVIDER_BASE_URL"


def _api_key_var(tier: str) -> str:
    return f"{tier.upper()}_PROVIDER_API_KEY"


def _model_var(tier: str) -> str:
    return f"ANTHROPIC_DEFAULT_{tier.upper()}_MODEL"


def legacy_base_url_variables(env: Mapping[str, str]) -> tuple[str, ...]:
    """The ``T_PROVIDER_BASE_URL`` variables that are set (non-blank), in tier order."""
    return tuple(_base_url_var(t) for t in LEGACY_TIERS if _get(env, _base_url_var(t)))


def legacy_configured(env: Mapping[str, str]) -> bool:
    """True when any ``HAIKU_/SONNET_/OPUS_PROVIDER_BASE_URL`` is set to a non-blank value."""
    return bool(legacy_base_url_variables(env))


def _check_url(value: str, variable: str) -> tuple[str, Problem | None]:
    """The URL without a trailing slash, or a problem naming the variable."""
    if not value.lower().startswith(("http://", "https://")) or value.endswith("://"):
        if looks_secret(value):
            said = f"{variable} holds what looks like a key ({concealed(value)}, not shown), not a URL"
        else:
            said = f"{variable}={safe_url(value)!r} is not an http(s) URL"
        return value, Problem(
            f"{said}; set it to the provider's base URL, e.g. https://api.z.ai/api/anthropic",
            file=ENV_FILE,
            path=variable,
        )
    return value.rstrip("/"), None


def anthropic_base_url(env: Mapping[str, str]) -> str:
    """``$GATEWAY_ANTHROPIC_BASE_URL`` when set (tests, corporate proxies), else Anthropic's URL.

    Raises ConfigError when the variable is set to something that is not an http(s) URL.
    """
    value = _get(env, "GATEWAY_ANTHROPIC_BASE_URL")
    if not value:
        return ANTHROPIC_BASE_URL
    url, problem = _check_url(value, "GATEWAY_ANTHROPIC_BASE_URL")
    if problem is not None:
        raise ConfigError(problem)
    return url


def _exact_pattern(name: str) -> str:
    """A routes.toml pattern matching exactly ``name`` (glob characters escaped)."""
    return "".join(_GLOB_ESCAPES.get(c, c) for c in name)


def _tier_model_name(env: Mapping[str, str], tier: str) -> str:
    name = _get(env, _model_var(tier))
    if name.lower().endswith(_ONE_M_SUFFIX):
        name = name[: -len(_ONE_M_SUFFIX)].rstrip()
    return name


def _build(env: Mapping[str, str]) -> tuple[dict[str, Any], list[Problem], list[Problem]]:
    """(document, errors, warnings) for the legacy environment."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    providers: dict[str, Any] = {}
    routes: list[dict[str, Any]] = []
    earlier: list[tuple[str, ...]] = []  # match lists of the routes made so far

    for tier in LEGACY_TIERS:
        url_var, key_var, model_var = _base_url_var(tier), _api_key_var(tier), _model_var(tier)
        url = _get(env, url_var)
        if not url:
            if _get(env, key_var):
                warnings.append(
                    Problem(
                        f"{key_var} is set but {url_var} is not, so {tier} models go to "
                        f"Anthropic; set {url_var} to send them to that provider",
                        file=ENV_FILE,
                        path=key_var,
                        severity="warning",
                    )
                )
            continue
        url, problem = _check_url(url, url_var)
        if problem is not None:
            errors.append(problem)
        if not _get(env, key_var):
            errors.append(
                Problem(
                    f"{url_var} is set but {key_var} is not; set {key_var} to the API key "
                    f"of {safe_url(url)}, or unset {url_var} to send {tier} models to Anthropic",
                    file=ENV_FILE,
                    path=key_var,
                )
            )
        provider: dict[str, Any] = {"base_url": url, "key": {"env": key_var}, "auth": "x-api-key"}
        preset = preset_for_url(url) if problem is None else None
        providers[tier] = provider if preset is None else {"preset": preset, **provider}

        match: list[str] = []
        name = _tier_model_name(env, tier)
        if name:
            # Resolving the name against the routes made so far tells whether one of them
            # already takes it (the same name, or an earlier tier's word in it).
            taken = Matcher(earlier).resolve(name) if earlier else -1
            if taken >= 0:
                by = next(p for p in earlier[taken] if Matcher([[p]]).resolve(name) == 0)
                warnings.append(
                    Problem(
                        f"{show(name)} is already routed to {routes[taken]['name']} "
                        f"(matched by {show(by)}), so it is not added "
                        f"to route {tier}; give each tier its own model name",
                        file=ENV_FILE,
                        path=model_var,
                        severity="warning",
                    )
                )
            else:
                match.append(_exact_pattern(name))
        match.append(f"*{tier}*")
        routes.append({"name": tier, "match": match, "to": tier})
        earlier.append(tuple(match))

    try:
        anthropic_url = anthropic_base_url(env)
    except ConfigError as e:
        errors.extend(e.problems)
        anthropic_url = ANTHROPIC_BASE_URL
    providers["anthropic"] = {
        "base_url": anthropic_url,
        "key": [{"oauth_file": True}, {"client": True}],
    }
    routes.append({"name": "default", "match": "*", "to": "anthropic"})
    return {"version": 1, "providers": providers, "route": routes}, errors, warnings


def legacy_document(env: Mapping[str, str]) -> dict[str, Any]:
    """The routes.toml-shaped document the legacy variables in ``env`` describe.

    Raises ConfigError listing every problem (a base URL without its API key, a URL that is
    not http(s)), each naming the variable and the fix.
    """
    document, errors, _ = _build(env)
    if errors:
        raise ConfigError(errors)
    return document


def load_legacy(env: Mapping[str, str]) -> RuleSet:
    """The RuleSet of the legacy environment (source kind ``env``), warnings included.

    Raises ConfigError as ``legacy_document`` does.
    """
    from rules.loader import compile_document  # the loader imports nothing from here

    document, errors, warnings = _build(env)
    if errors:
        raise ConfigError(errors)
    ruleset = compile_document(document, file=ENV_FILE, source=ConfigSource("env"), env=env)
    if not warnings:
        return ruleset
    return dataclasses.replace(ruleset, warnings=tuple(warnings) + ruleset.warnings)


def legacy_header(env: Mapping[str, str]) -> str:
    """The comment block ``gateway routes --from-env`` puts above the rendered TOML.

    Names the variables that were read (never their secret values) and what to do next.
    """
    per_tier = []
    for tier in LEGACY_TIERS:
        if _get(env, _base_url_var(tier)):
            used = (_base_url_var(tier), _api_key_var(tier), _model_var(tier))
            per_tier.append("  " + ", ".join(v for v in used if _get(env, v)))
    if _get(env, "GATEWAY_ANTHROPIC_BASE_URL"):
        per_tier.append("  GATEWAY_ANTHROPIC_BASE_URL")
    presets = sorted({p for t in LEGACY_TIERS if (p := preset_for_url(_get(env, _base_url_var(t))))})
    lines = [
        "routes.toml generated by `gateway routes --from-env` from the legacy environment",
        "(the original proxy's variables), from:",
        *(per_tier or ["  (none set: every model goes to Anthropic)"]),
        "API keys stay in the environment: each provider reads its *_PROVIDER_API_KEY variable.",
        *(
            [f"`preset` ({', '.join(presets)}): that provider's documented wire policy (docs/providers.md)."]
            if presets
            else []
        ),
        "Save this as routes.toml where you run `gateway serve`: the file then takes precedence",
        "over the variables, and you can edit it (check it with `gateway validate routes.toml`).",
    ]
    return "\n".join(lines)
