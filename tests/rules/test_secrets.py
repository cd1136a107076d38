"""No secret in a config message: many secret-shaped values, in every place people put them.

``gateway validate`` prints these messages in CI logs and ``gateway serve`` in its log, so a
key pasted in the wrong place must be named by place and kind, never quoted. Each case puts
one secret into one place of an otherwise valid routes.toml (or the legacy environment) and
checks that no 8 characters in a row of the secret's random part appear in any message.
"""

from __future__ import annotations

import pytest

from rules.errors import ConfigError
from rules.legacy import load_legacy
from rules.loader import check_bytes
from rules.redact import looks_secret, may_be_secret, safe_url, secret_prefix

# (prefix, random part): the shapes of real keys.
SECRETS = [
    ("sk-ant-api03-", "Zq8xWv2LmN4pR7tY9uB1cD3eF5gH6jK0-Ab_cD3eF5gH6"),  # Anthropic API key
    ("sk-ant-oat01-", "Qw3eR5tY7uI9oP1aS2dF4gH6jK8lZ0xC"),  # Claude login token
    ("sk-or-v1-", "5f0c3a9be1d24a7c8f6e2b1d0c9a8b7e6f5d4c3b2a1908f7e6d5c4b3a291807f"),  # OpenRouter
    ("sk-", "0123456789abcdef0123456789abcdef"),  # DeepSeek, DashScope, Moonshot
    ("", "8f14e45fceea167a5a36dedd4bea2543.Kq3vT9xWm2LpR7zA"),  # Z.AI
    ("eyJ", "hbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"),  # JWT (MiniMax)
    ("", "a3f9c2d17b8e4f60a1b2c3d4e5f60718"),  # a hex token: also a valid variable name
    ("", "123e4567-e89b-12d3-a456-426614174000"),  # a UUID
]

# Where people paste keys, as routes.toml lines ({S} is the secret). Each lands in the provider
# table below (or replaces the [server] table, or the provider's base_url / key).
PLACES = [
    'key = "{S}"',
    'key = ["{S}"]',
    'key = {{ env = "{S}" }}',
    'key = [{{ env = "ZAI_API_KEY" }}, {{ env = "{S}" }}]',
    'key = {{ value = "{S}" }}',
    'key = {{ client = "{S}" }}',
    'key = {{ oauth_file = "{S}" }}',
    'key = {{ valu = "{S}" }}',
    'key = {{ env = "ZAI_API_KEY", value = "{S}" }}',
    'key = {{ env = "ZAI_API_KEY" }}\nauth = "{S}"',
    'key = {{ env = "ZAI_API_KEY" }}\nauth = "Bearer {S}"',
    'key = {{ env = "ZAI_API_KEY" }}\nheaders = {{ x-token = "{S}" }}\nthinking = "nope"',
    'key = {{ env = "ZAI_API_KEY" }}\nheaders = {{ x-token = "{S}\\n" }}',
    'key = {{ env = "ZAI_API_KEY" }}\nheaders = {{ "{S}" = "v" }}',
    'key = {{ env = "ZAI_API_KEY" }}\nbetas = ["{S}", "{S}"]',
    'key = {{ env = "ZAI_API_KEY" }}\nthinking = "{S}"',
    'key = {{ env = "ZAI_API_KEY" }}\npreset = "{S}"',
    'key = {{ env = "ZAI_API_KEY" }}\ncount_tokens = {{ via = "{S}" }}',
    'key = {{ env = "ZAI_API_KEY" }}\n"{S}" = 1',
    'key = {{ env = "ZAI_API_KEY" }}\nbase_url = "https://user:{S}@api.example.com"',
    'key = {{ env = "ZAI_API_KEY" }}\nbase_url = "https://{S}@api.example.com/x"',
    'key = {{ env = "ZAI_API_KEY" }}\nbase_url = "https://api.example.com/v1?key={S}"',
    'key = {{ env = "ZAI_API_KEY" }}\nbase_url = "https://api.example.com/v1?{S}"',
    'key = {{ env = "ZAI_API_KEY" }}\nbase_url = "https://api.example.com/v1#{S}"',
    'key = {{ env = "ZAI_API_KEY" }}\nbase_url = "https://api.example.com/{S}/v1 x"',
    'key = {{ env = "ZAI_API_KEY" }}\nbase_url = "https://api.example.com:99999/{S}"',
    'key = {{ env = "ZAI_API_KEY" }}\nbase_url = "{S}"',
    '[server]\nclient_keys = ["{S}"]',
    '[server]\nclient_keys = [{{ env = "{S}" }}]',
    '[server]\nclient_keys = [{{ value = "{S}" }}]',
    '[server]\nclient_keys = [{{ client = "{S}" }}]',
    '[server]\nhost = "{S}"\nport = "8082"',
    '[route]\nto = "{S}"',
    '[route]\nname = "{S}"\nto = "p"\n[[route]]\nname = "{S}"\nmatch = "x"\nto = "p"',
    '[route]\nmatch = ["{S}", "{S}"]\nto = "p"',
    '[providers]\n"{S}" = {{ base_url = "https://a.example", key = {{ env = "X" }} }}',
]

BASE_URL = 'base_url = "https://api.z.ai/api/anthropic"'


def document(place: str, secret: str) -> str:
    """A routes.toml with one provider `p` and one route, and `place` filled with `secret`."""
    line = place.format(S=secret)
    if line.startswith("[server]"):
        return f"version = 1\n{line}\n[providers.p]\n{BASE_URL}\nkey = {{ env = \"K\" }}\n[[route]]\nmatch = \"*\"\nto = \"p\"\n"
    if line.startswith("[route]"):
        body = line[len("[route]\n"):]
        head = "" if "match" in body else 'match = "*"\n'
        return f"version = 1\n[providers.p]\n{BASE_URL}\nkey = {{ env = \"K\" }}\n[[route]]\n{head}{body}\n"
    if line.startswith("[providers]"):
        extra = line[len("[providers]\n"):]
        return f"version = 1\n[providers]\n{extra}\np = {{ {BASE_URL}, key = {{ env = \"K\" }} }}\n[[route]]\nmatch = \"*\"\nto = \"p\"\n"
    base = "" if "base_url =" in line else BASE_URL + "\n"
    return f"version = 1\n[providers.p]\n{base}{line}\n[[route]]\nmatch = \"*\"\nto = \"p\"\n"


def assert_not_shown(secret_part: str, text: str) -> None:
    for start in range(len(secret_part) - 7):
        assert secret_part[start : start + 8] not in text, text


@pytest.mark.parametrize("prefix,rest", SECRETS, ids=[f"{p or 'bare'}{r[:4]}" for p, r in SECRETS])
def test_no_message_quotes_a_secret_wherever_it_is_pasted(prefix: str, rest: str) -> None:
    secret = prefix + rest
    for place in PLACES:
        text = document(place, secret)
        for env in ({}, {secret: "x", "K": "k", "ZAI_API_KEY": "z"}):
            _, problems = check_bytes(text.encode(), file="routes.toml", env=env)
            rendered = "\n".join(p.render() for p in problems)
            assert_not_shown(rest, rendered)


@pytest.mark.parametrize("prefix,rest", SECRETS, ids=[f"{p or 'bare'}{r[:4]}" for p, r in SECRETS])
def test_no_legacy_message_quotes_a_secret(prefix: str, rest: str) -> None:
    secret = prefix + rest
    environments = [
        {"HAIKU_PROVIDER_BASE_URL": secret, "HAIKU_PROVIDER_API_KEY": "k"},
        {"HAIKU_PROVIDER_BASE_URL": f"https://me:{secret}@api.z.ai/api/anthropic"},
        {"HAIKU_PROVIDER_BASE_URL": f"https://api.z.ai/api/anthropic?key={secret}", "HAIKU_PROVIDER_API_KEY": "k"},
        {"SONNET_PROVIDER_BASE_URL": f"https://api.example.com/{secret}"},
        {"GATEWAY_ANTHROPIC_BASE_URL": secret},
        {"GATEWAY_ANTHROPIC_BASE_URL": f"https://proxy.example.com/?token={secret}"},
        {
            "HAIKU_PROVIDER_BASE_URL": "https://api.z.ai/api/anthropic",
            "HAIKU_PROVIDER_API_KEY": "k",
            "SONNET_PROVIDER_BASE_URL": "https://api.z.ai/api/anthropic",
            "SONNET_PROVIDER_API_KEY": "k",
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": secret,
            "ANTHROPIC_DEFAULT_SONNET_MODEL": secret,
        },
    ]
    for env in environments:
        try:
            rendered = "\n".join(w.render() for w in load_legacy(env).warnings)
        except ConfigError as exc:
            rendered = str(exc)
        assert_not_shown(rest, rendered)


def test_what_looks_secret_and_what_does_not() -> None:
    for prefix, rest in SECRETS:
        assert looks_secret(prefix + rest), prefix + rest
    names = [
        "ZAI_API_KEY", "OPENROUTER_API_KEY_2", "claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022",
        "glm-4.5-air", "x-tenant", "context-1m-2025-08-07", "https://dashscope-intl.aliyuncs.com/apps/anthropic",
        "http://192.168.1.10:8082", "~/.claude/.credentials.json", "sk-test", "deepseek-v4-pro",
    ]
    assert [n for n in names if looks_secret(n)] == []


def test_secret_prefix_says_the_kind_only() -> None:
    assert secret_prefix("sk-ant-api03-abc") == "sk-ant-"
    assert secret_prefix("sk-or-v1-abc") == "sk-or-"
    assert secret_prefix("Bearer abc") == "Bearer "
    assert secret_prefix("8f14e45f") == ""


def test_safe_url_keeps_what_helps_and_drops_what_may_be_secret() -> None:
    assert safe_url("https://api.z.ai/api/anthropic") == "https://api.z.ai/api/anthropic"
    assert safe_url("https://u:p@ss@api.z.ai/x?key=s&tier=1#frag") == "https://api.z.ai/x?key=...&tier=...#..."
    assert safe_url("https://h/v1/8f14e45fceea167a5a36dedd4bea2543/x") == "https://h/v1/.../x"
    assert safe_url("localhost:8999") == "localhost:8999"
    assert safe_url("http://[::1") == "http://[::1"


def test_places_that_may_hold_secrets() -> None:
    assert may_be_secret(("providers", "p", "key", "value"), "hunter2")
    assert may_be_secret(("providers", "p", "key", 0), "hunter2")
    assert not may_be_secret(("providers", "p", "key"), "ZAI_API_KEY")  # a name, meant as { env = ... }
    assert not may_be_secret(("providers", "p", "key", "env"), "ZAI-API-KEY")
    assert may_be_secret(("server", "client_keys", 0, "value"), 12345678)
    assert may_be_secret(("providers", "p", "headers", "x-token"), "abc")
    assert not may_be_secret(("providers", "p", "auth"), "Bearer")
    assert may_be_secret(("providers", "p", "auth"), "hunter2 and more")
    assert not may_be_secret(("providers", "p", "key", "value"), "")
    assert not may_be_secret(("providers", "p", "key", "client"), False)
    assert not may_be_secret(("route", 0, "match"), "claude-*")
