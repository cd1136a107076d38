"""rules.render: any RuleSet back to routes.toml text that loads to an equal RuleSet."""

from __future__ import annotations

import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.conditions import REQUEST_CLASSES
from rules.discover import embedded_default
from rules.legacy import legacy_header, load_legacy
from rules.loader import check_bytes, compile_document, load_bytes
from rules.model import QUOTA_WINDOWS, RuleSet
from rules.presets import PRESETS
from rules.render import render_toml, toml_key, toml_string

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

FULL = """\
version = 1

[server]
host = "0.0.0.0"
port = 8082
client_keys = [{ env = "GATEWAY_CLIENT_KEY" }, { value = "a-literal-client-key-123456" }]
max_body_mb = 8.5
allowed_hosts = ["gateway.lan", "192.168.1.10", "fe80::1"]
ledger = "~/usage ledger.db"
ledger_days = 90

[defaults]
timeout_s = 300
connect_timeout_s = 5
fallback_on = [429, 529]

[providers.anthropic]
base_url = "https://api.anthropic.com"
key = [{ client = true }, { oauth_file = "~/.claude/.credentials.json" }, { oauth_file = true }]
timeout_s = 600

[providers.zai]
base_url = "https://api.z.ai/api/anthropic"
key = { env = "ZAI_API_KEY" }
auth = "bearer"
betas = ["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"]
thinking = "strip"
thinking_param = "no_budget"
count_tokens = { via = "anthropic" }
system_turns = "merge"
tool_choice = "auto"
drop_fields = ["context_management", "output_config"]
strip_cache_control = true
headers = { "x-extra" = "value", X-Other = "two words" }
connect_timeout_s = 2.5
max_concurrent = 16

[providers.lan]
base_url = "http://192.168.1.10:8080/v1"
key = { value = "sk-lan-literal-key-0000" }
betas = "drop"
count_tokens = "estimate"
max_concurrent = 2
max_queue = 0

[providers.none]
base_url = "http://localhost:1"
key = { client = true }
betas = []
count_tokens = "reject"
thinking = "keep"

[[route]]
name = "haiku"
match = ["claude-haiku-*", "claude-3-5-haiku*", "glm-4.7"]
to = [{ provider = "zai", model = "glm-4.7" }]
fallback_on = [500]

[[route]]
match = "lan-*"
to = [{ provider = "lan" }, { provider = "none" }]

[[route]]
name = "helpers"
match = "claude-*"
when = { request_class = ["compaction", "subagent"], agent_type = "general-*", server_tools = false }
to = [{ provider = "zai", model = "glm-4.7", spill_at = { "7d_oi" = 1, "5h" = 0.95 } }, { provider = "lan" }]

[[route]]
name = "search"
match = ["claude-opus-*", "claude-sonnet-*"]
when = { server_tools = true, agent_type = ["a", "b*"] }
to = "anthropic"

[[route]]
name = "default.route"
match = "*"
to = [{ provider = "anthropic" }, { provider = "zai", model = "glm-4.7" }]
"""


def same(a: RuleSet, b: RuleSet) -> bool:
    """Equal rules: everything but where they came from and the warnings (and so provenance)."""
    return (dict(a.providers), a.routes, a.server, a.defaults) == (
        dict(b.providers),
        b.routes,
        b.server,
        b.defaults,
    )


def round_trip(rules: RuleSet, header: str | None = None) -> tuple[str, RuleSet]:
    text = render_toml(rules, header=header)
    return text, load_bytes(text.encode("utf-8"), file="rendered.toml")


# --- strings and keys -------------------------------------------------------------------------

def test_toml_string_escapes_quotes_backslashes_and_control_characters() -> None:
    assert toml_string('say "hi"') == '"say \\"hi\\""'
    assert toml_string("C:\\Users\\me") == '"C:\\\\Users\\\\me"'
    assert toml_string("a\tb\nc\rd\x00e\x7f") == '"a\\tb\\nc\\rd\\u0000e\\u007F"'
    assert toml_string("glm-4.7 ünï 🦊") == '"glm-4.7 ünï 🦊"'


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",))))
def test_toml_string_loads_back_to_the_same_text(value: str) -> None:
    assert tomllib.loads(f"x = {toml_string(value)}")["x"] == value
    assert tomllib.loads(f"{toml_key(value)} = 1") == {value: 1}


def test_toml_key_is_bare_when_it_can_be() -> None:
    assert toml_key("zai") == "zai"
    assert toml_key("x-extra_2") == "x-extra_2"
    assert toml_key("a.b") == '"a.b"'
    assert toml_key("") == '""'


# --- round trips ---------------------------------------------------------------------------------

def test_full_config_round_trips() -> None:
    rules = load_bytes(FULL.encode(), file="full.toml")
    text, again = round_trip(rules)
    assert same(rules, again)
    assert render_toml(again) == text  # and rendering is stable


def test_rendering_is_readable_providers_then_routes_with_shorthands() -> None:
    rules = load_bytes(FULL.encode(), file="full.toml")
    text = render_toml(rules)
    assert text.index("[providers.anthropic]") < text.index("[providers.zai]") < text.index("[[route]]")
    assert 'key = { env = "ZAI_API_KEY" }' in text
    assert 'match = "lan-*"' in text
    assert 'to = [{ provider = "zai", model = "glm-4.7" }]' in text
    assert 'count_tokens = { via = "anthropic" }' in text
    assert 'headers = { x-extra = "value", X-Other = "two words" }' in text
    # Conditions in a fixed order, one value without a list; spill_at windows in window order.
    assert 'when = { request_class = ["subagent", "compaction"], agent_type = "general-*", server_tools = false }' in text
    assert '\n    { provider = "zai", model = "glm-4.7", spill_at = { "5h" = 0.95, "7d_oi" = 1 } },\n' in text
    assert 'when = { agent_type = ["a", "b*"], server_tools = true }\nto = "anthropic"' in text
    # The unnamed route stays unnamed: "route[1]" is the loader's name, not one a file can hold.
    assert "route[1]" not in text
    assert rules.routes[1].name == "route[1]"


def test_defaults_are_left_out() -> None:
    minimal = b"""
version = 1
[providers.a]
base_url = "https://a.example"
key = { env = "A_KEY" }
[[route]]
name = "all"
match = "*"
to = "a"
"""
    rules = load_bytes(minimal)
    text = render_toml(rules)
    assert text == (
        'version = 1\n\n[providers.a]\nbase_url = "https://a.example"\nkey = { env = "A_KEY" }\n\n'
        '[[route]]\nname = "all"\nmatch = "*"\nto = "a"\n'
    )


def test_values_are_compared_with_the_files_defaults_table() -> None:
    rules = load_bytes(FULL.encode(), file="full.toml")
    text = render_toml(rules)
    assert "timeout_s = 300" in text  # [defaults]
    assert "timeout_s = 600" in text  # anthropic's own, which differs from [defaults]
    lines = text.splitlines()
    assert sum(line.startswith("timeout_s = ") for line in lines) == 2
    assert "connect_timeout_s = 5" in lines  # [defaults]
    assert "connect_timeout_s = 2.5" in lines  # zai's own
    assert sum(line.startswith("connect_timeout_s = ") for line in lines) == 2
    assert "fallback_on = [500]" in text
    assert "fallback_on = [429, 529]" in text
    assert text.count("fallback_on") == 2


PRESETS_TOML = """\
version = 1

[providers.zai]
preset = "zai"
key = { env = "ZAI_API_KEY" }
count_tokens = { via = "anthropic" }
drop_fields = []

[providers.local]
preset = "ollama"

[providers.lab]
preset = "vllm"
base_url = "http://gpu:8000"

[providers.router]
preset = "openrouter"
base_url = "https://openrouter.ai/api/"
key = { env = "OPENROUTER_API_KEY" }
auth = "x-api-key"
strip_cache_control = false

[providers.anthropic]
preset = "anthropic"
key = { client = true }

[[route]]
match = "*"
to = [{ provider = "zai" }, { provider = "local" }, { provider = "lab" }, { provider = "router" }, { provider = "anthropic" }]
"""


def test_presets_are_written_with_only_the_keys_that_differ_from_them() -> None:
    rules = load_bytes(PRESETS_TOML.encode(), file="presets.toml")
    text, again = round_trip(rules)
    assert same(rules, again)
    assert {n: p.preset for n, p in again.providers.items()} == {n: p.preset for n, p in rules.providers.items()}
    sections = {s.split("]", 1)[0]: s.split("]", 1)[1].strip() for s in text.split("\n[")[1:]}
    assert sections["providers.zai"] == (
        'preset = "zai"\nkey = { env = "ZAI_API_KEY" }\ncount_tokens = { via = "anthropic" }\ndrop_fields = []'
    )
    assert sections["providers.local"] == 'preset = "ollama"'  # no key: none is sent
    assert sections["providers.lab"] == 'preset = "vllm"\nbase_url = "http://gpu:8000"'
    # Equal to the preset's base URL (the trailing slash is dropped), so left out.
    assert sections["providers.router"] == 'preset = "openrouter"\nkey = { env = "OPENROUTER_API_KEY" }\nauth = "x-api-key"'
    assert sections["providers.anthropic"] == 'preset = "anthropic"\nkey = { client = true }'


def test_derived_max_queue_is_left_out_and_an_explicit_one_kept() -> None:
    text = render_toml(load_bytes(FULL.encode(), file="full.toml"))
    assert "max_concurrent = 16\n" in text and "max_queue = 64" not in text
    assert "max_concurrent = 2\nmax_queue = 0\n" in text


def test_strange_names_and_strings_round_trip() -> None:
    source = r'''
version = 1
[providers.p-1_X]
base_url = "https://例え.jp/パス/\"quoted\"/back\\slash"
key = [{ value = "sk-\"quo\\ted\"\u0001\ttab-1234567890" }, { oauth_file = "C:\\Users\\Zoë\\.claude\\.credentials.json" }]
headers = { "x-odd" = "tab\there \"q\" \\ ünï 🦊", "x-#hash" = "#not a comment" }
drop_fields = ["a b", "c\"d"]
betas = ["beta \"1\"", "b\\2"]

[[route]]
name = "odd.name-1_"
match = ["model \"quoted\"", "back\\slash*", "ünï-[!x]?", "new\nline", "tab\tmodel", "del\u007f"]
to = [{ provider = "p-1_X", model = "glm \"4.7\" \\ \t ü" }]
'''
    rules = load_bytes(source.encode(), file="odd.toml")
    text, again = round_trip(rules)
    assert same(rules, again)
    assert again.resolve("MODEL \"QUOTED\"").name == "odd.name-1_"  # type: ignore[union-attr]
    assert again.resolve("new\nline") is not None


def test_long_match_list_is_written_one_per_line_and_round_trips() -> None:
    names = ", ".join(f'"claude-model-number-{i}"' for i in range(12))
    source = f'version = 1\n[providers.a]\nbase_url = "https://a"\nkey = {{ client = true }}\n[[route]]\nname = "r"\nmatch = [{names}]\nto = "a"\n'
    rules = load_bytes(source.encode())
    text, again = round_trip(rules)
    assert '\n    "claude-model-number-0",\n' in text
    assert all(len(line) <= 100 for line in text.splitlines())
    assert same(rules, again)


def test_header_becomes_comments_and_still_loads() -> None:
    rules = load_bytes(FULL.encode(), file="full.toml")
    text, again = round_trip(rules, header="made by a test\n\nwith a control \x01 character")
    assert text.startswith("# made by a test\n#\n# with a control ? character\n\nversion = 1\n")
    assert same(rules, again)


def test_embedded_default_round_trips() -> None:
    rules = embedded_default({})
    _, again = round_trip(rules)
    assert same(rules, again)


# --- `gateway routes --from-env`, then `gateway validate` ---------------------------------------

LEGACY_ENV = {
    "HAIKU_PROVIDER_BASE_URL": "https://api.z.ai/api/anthropic",
    "HAIKU_PROVIDER_API_KEY": "sk-zai-secret-0123456789",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.7",
    "SONNET_PROVIDER_BASE_URL": "http://127.0.0.1:4000/",
    "SONNET_PROVIDER_API_KEY": "sk-local-0123456789",
    "ANTHROPIC_DEFAULT_SONNET_MODEL": "glm-4.6[1m]",
    "OPUS_PROVIDER_BASE_URL": "https://api.z.ai/api/anthropic",
    "OPUS_PROVIDER_API_KEY": "sk-zai-secret-0123456789",
    "ANTHROPIC_DEFAULT_OPUS_MODEL": "glm-4.5-air",
    "GATEWAY_ANTHROPIC_BASE_URL": "http://127.0.0.1:8999",
}


def test_routes_from_env_output_validates_without_errors_or_warnings() -> None:
    rules = load_legacy(LEGACY_ENV)
    text = render_toml(rules, header=legacy_header(LEGACY_ENV))
    checked, problems = check_bytes(text.encode(), file="routes.toml", env=LEGACY_ENV)
    assert problems == []
    assert checked is not None and same(rules, checked)
    assert "sk-zai-secret" not in text and "sk-local" not in text
    # Z.AI's URL gets its preset: written as such, and the same policy after the round trip.
    assert text.count('preset = "zai"') == 2 and "system_turns" not in text
    assert checked.providers["haiku"].preset == "zai" and checked.providers["sonnet"].preset is None
    assert checked.providers["opus"].system_turns == "merge"
    for model, provider in [
        ("claude-haiku-5-5", "haiku"),
        ("glm-4.7", "haiku"),
        ("glm-4.6", "sonnet"),
        ("claude-sonnet-4-5-20250929", "sonnet"),
        ("glm-4.5-air", "opus"),
        ("claude-opus-5-5", "opus"),
        ("gpt-5", "anthropic"),
    ]:
        route = checked.resolve(model)
        assert route is not None and route.to[0].provider.name == provider, model


def test_routes_from_env_output_validates_for_each_single_tier() -> None:
    for tier in ("haiku", "sonnet", "opus"):
        env = {f"{tier.upper()}_PROVIDER_BASE_URL": "https://x.example", f"{tier.upper()}_PROVIDER_API_KEY": "k"}
        rules = load_legacy(env)
        checked, problems = check_bytes(render_toml(rules, header=legacy_header(env)).encode(), env=env)
        assert problems == [] and checked is not None and same(rules, checked), tier


# --- any RuleSet the loader can make ------------------------------------------------------------

def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A table holding any subset of ``fields``."""
    return st.fixed_dictionaries({}, optional=fields)


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=12)
_NAME = st.from_regex(r"\A[A-Za-z0-9_-]{1,6}\Z")
_ENV = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,6}\Z")
_HEADER = st.from_regex(r"\Ax-[A-Za-z0-9-]{1,6}\Z")
_SECONDS = st.floats(min_value=0.001, max_value=1e7, allow_nan=False, allow_infinity=False)
_STATUSES = st.lists(st.integers(400, 599), min_size=0, max_size=4, unique=True)
_KEY = st.one_of(
    _ENV.map(lambda n: {"env": n}),
    _TEXT.map(lambda v: {"value": v}),
    _TEXT.map(lambda p: {"oauth_file": p}),
    st.just({"oauth_file": True}),
    st.just({"client": True}),
)
_PATTERN = _TEXT.filter(lambda p: set(p) != {"*"})
_WHEN = _optional(
    request_class=st.one_of(
        st.sampled_from(REQUEST_CLASSES), st.lists(st.sampled_from(REQUEST_CLASSES), min_size=1, max_size=7, unique=True)
    ),
    agent_type=st.one_of(_TEXT, st.lists(_TEXT, min_size=1, max_size=30)),  # long lists span lines
    server_tools=st.booleans(),
).filter(bool)
_SPILL_AT = st.dictionaries(
    st.sampled_from(QUOTA_WINDOWS),
    st.floats(min_value=0, max_value=1, exclude_min=True) | st.just(1),
    min_size=1,
    max_size=3,
)




@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(_NAME, min_size=1, max_size=3, unique=True))
    providers = {}
    for name in names:
        table: dict[str, Any] = {
            "base_url": draw(st.sampled_from(["https://a.example", "http://127.0.0.1:9/v1/", "https://例え.jp/\"p\"\\q"])),
            "key": draw(st.one_of(_KEY, st.lists(_KEY, min_size=1, max_size=3))),
        }
        preset = draw(st.none() | st.sampled_from(sorted(PRESETS)))
        if preset is not None:
            # A preset may stand in for base_url (when it has one) and key (when it needs none).
            table["preset"] = preset
            if PRESETS[preset].base_url is not None and draw(st.booleans()):
                del table["base_url"]
            if not PRESETS[preset].needs_key and draw(st.booleans()):
                del table["key"]
        table |= draw(
            _optional(
                auth=st.sampled_from(["x-api-key", "bearer"]),
                betas=st.one_of(st.sampled_from(["forward", "drop"]), st.lists(_TEXT, max_size=3, unique=True)),
                thinking=st.sampled_from(["foreign", "strip", "keep"]),
                thinking_param=st.sampled_from(["keep", "drop", "no_budget"]),
                system_turns=st.sampled_from(["keep", "merge"]),
                tool_choice=st.sampled_from(["keep", "auto"]),
                count_tokens=st.one_of(
                    st.sampled_from(["forward", "estimate", "reject"]),
                    st.sampled_from(names).map(lambda n: {"via": n}),
                ),
                drop_fields=st.lists(_TEXT.filter(lambda f: f not in ("model", "messages", "max_tokens", "stream")), max_size=3, unique=True),
                strip_cache_control=st.booleans(),
                headers=st.dictionaries(_HEADER, _LINE, max_size=3),
                timeout_s=_SECONDS,
                connect_timeout_s=_SECONDS,
                max_concurrent=st.integers(1, 1000),
            )
        )
        if "max_concurrent" in table and draw(st.booleans()):
            table["max_queue"] = draw(st.integers(0, 10_000))
        providers[name] = table
    routes = []
    for index in range(draw(st.integers(1, 4))):
        route: dict[str, Any] = {
            "match": draw(st.one_of(_PATTERN, st.lists(_PATTERN, min_size=1, max_size=3))),
            "to": draw(
                st.one_of(
                    st.sampled_from(names),
                    st.lists(
                        st.fixed_dictionaries({"provider": st.sampled_from(names)}, optional={"model": _TEXT}),
                        min_size=1,
                        max_size=3,
                    ),
                )
            ),
        }
        if draw(st.booleans()):
            route["name"] = f"r{index}.{draw(_NAME)}"
        if draw(st.booleans()):
            route["when"] = draw(_WHEN)
        if isinstance(route["to"], list):
            for target in route["to"]:
                if draw(st.booleans()):
                    target["spill_at"] = draw(_SPILL_AT)
        route |= draw(_optional(fallback_on=_STATUSES))
        routes.append(route)
    doc: dict[str, Any] = {"version": 1, "providers": providers, "route": routes}
    doc |= draw(
        _optional(
            server=_optional(
                host=_TEXT,
                port=st.integers(1, 65535),
                client_keys=st.lists(st.one_of(_ENV.map(lambda n: {"env": n}), _TEXT.map(lambda v: {"value": v})), min_size=1, max_size=2),
                max_body_mb=st.floats(min_value=0.01, max_value=1000),
                allowed_hosts=st.lists(st.sampled_from(["*", "gateway.lan", "192.168.1.10", "fe80::1"]), max_size=2),
                ledger=st.one_of(st.booleans(), _TEXT),
                ledger_days=st.integers(1, 3650),
            ),
            defaults=_optional(timeout_s=_SECONDS, connect_timeout_s=_SECONDS, fallback_on=_STATUSES),
        )
    )
    return doc


@settings(max_examples=150, deadline=None)
@given(documents())
def test_any_ruleset_round_trips(doc: dict[str, Any]) -> None:
    rules = compile_document(doc)
    text, again = round_trip(rules)
    assert same(rules, again), text
