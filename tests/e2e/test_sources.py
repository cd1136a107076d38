"""Where the config comes from, end to end: an example profile, the legacy environment, the
embedded default, ./routes.toml; and several workers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fakes.config import profile_with_urls
from fakes.gateway import anthropic_client, write_claude_credentials

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZAI_KEY = "zai-key-for-sources-0001"
CLIENT_KEY = "sk-ant-client-for-sources"


def _ask(gateway: object, model: str, *, api_key: str | None = CLIENT_KEY, auth_token: str | None = None) -> str:
    client = anthropic_client(gateway, api_key=api_key, auth_token=auth_token)
    with client.messages.stream(model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}]) as stream:
        return stream.get_final_message().content[0].text  # type: ignore[union-attr]


def test_mixed_profile_sends_haiku_to_zai_and_sonnet_to_anthropic(upstream_factory, inprocess_gateway) -> None:
    # Given with --config, as in the tests below, but only its routing is tested: in process.
    zai = upstream_factory("zai", api_key=ZAI_KEY, strict_third_party=True)
    anthropic = upstream_factory("anthropic", api_key=CLIENT_KEY)
    config = profile_with_urls(EXAMPLES / "mixed.toml", {"zai": zai.url, "anthropic": anthropic.url})
    gateway = inprocess_gateway(config, env={"ZAI_API_KEY": ZAI_KEY})

    assert _ask(gateway, "claude-haiku-5-5").startswith("[zai] model=glm-4.7")
    assert zai.last.credentials == [("x-api-key", ZAI_KEY)] and not zai.saw(CLIENT_KEY)
    assert _ask(gateway, "claude-sonnet-5-5").startswith("[anthropic] model=claude-sonnet-5-5")
    assert anthropic.last.credentials == [("x-api-key", CLIENT_KEY)] and not anthropic.saw(ZAI_KEY)
    assert _ask(gateway, "claude-opus-5-5").startswith("[anthropic] model=claude-opus-5-5")


def test_legacy_environment_routes_tiers_and_keeps_the_oauth_file_first(
    upstream_factory, gateway_factory, gateway_home
) -> None:
    zai = upstream_factory("zai", api_key=ZAI_KEY)
    anthropic = upstream_factory("anthropic")
    gateway = gateway_factory(
        None,
        env={
            "HAIKU_PROVIDER_BASE_URL": zai.url,
            "HAIKU_PROVIDER_API_KEY": ZAI_KEY,
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.7",
            "GATEWAY_ANTHROPIC_BASE_URL": anthropic.url,
        },
        home=gateway_home,
    )
    health = gateway.health()
    assert health["config"]["source"] == "env"
    assert "HAIKU_PROVIDER_BASE_URL" in health["config"]["reason"]
    assert health["tiers"]["haiku"]["targets"] == [{"provider": "haiku", "upstream_model": "claude-haiku-5-5"}]

    assert _ask(gateway, "claude-haiku-5-5").startswith("[zai] model=claude-haiku-5-5")
    assert _ask(gateway, "glm-4.7").startswith("[zai] model=glm-4.7")
    assert zai.last.credentials == [("x-api-key", ZAI_KEY)]

    # No OAuth file yet: the client's own credentials go to Anthropic...
    assert _ask(gateway, "claude-sonnet-5-5").startswith("[anthropic]")
    assert anthropic.last.credentials == [("x-api-key", CLIENT_KEY)]
    # ...and once `claude` has logged in, the file comes first, as in the original proxy.
    write_claude_credentials(gateway_home, "sk-ant-oat01-legacy-token-77")
    _ask(gateway, "claude-opus-5-5")
    assert anthropic.last.headers["authorization"] == "Bearer sk-ant-oat01-legacy-token-77"
    assert not anthropic.last.contains(CLIENT_KEY)


def test_embedded_default_passes_client_credentials_to_anthropic(upstream_factory, gateway_factory) -> None:
    anthropic = upstream_factory("anthropic")
    gateway = gateway_factory(None, env={"GATEWAY_ANTHROPIC_BASE_URL": anthropic.url})
    health = gateway.health()
    assert health["config"]["source"] == "default"
    assert health["config"]["reason"].startswith("embedded default")
    assert [r["match"] for r in health["routes"]] == [["*"]]
    assert _ask(gateway, "claude-sonnet-5-5", api_key=None, auth_token="oauth-from-claude-code").startswith("[anthropic]")
    assert anthropic.last.headers["authorization"] == "Bearer oauth-from-claude-code"


def test_routes_toml_in_the_working_directory_is_found(upstream_factory, gateway_factory, tmp_path: Path) -> None:
    zai = upstream_factory("zai")
    cwd = tmp_path / "project"
    cwd.mkdir()
    (cwd / "routes.toml").write_text(
        f'version = 1\n[providers.zai]\nbase_url = "{zai.url}"\nkey = {{ client = true }}\n'
        '[[route]]\nname = "all"\nmatch = "*"\nto = "zai"\n'
    )
    gateway = gateway_factory(None, cwd=cwd)
    assert gateway.health()["config"]["path"] == str(cwd / "routes.toml")
    assert _ask(gateway, "anything").startswith("[zai]")


def test_two_workers_both_serve(upstream_factory, gateway_factory) -> None:
    anthropic = upstream_factory("anthropic")
    gateway = gateway_factory(
        f'version = 1\n[providers.a]\nbase_url = "{anthropic.url}"\nkey = {{ client = true }}\n'
        '[[route]]\nname = "all"\nmatch = "*"\nto = "a"\n',
        args=["--workers", "2"],
    )
    pids: set[int] = set()
    for _ in range(200):  # fresh connections land on either worker
        with httpx.Client() as http:
            pids.add(http.get(f"{gateway.url}/health").json()["pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2
    assert _ask(gateway, "claude-sonnet-5-5").startswith("[anthropic]")


@pytest.mark.parametrize("profile", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_example_profile_starts(profile: str, gateway_factory) -> None:
    gateway = gateway_factory((EXAMPLES / profile).read_text(), env={"ZAI_API_KEY": ZAI_KEY, "GATEWAY_CLIENT_KEY": "k" * 20})
    assert gateway.health()["config"]["generation"] == 1
