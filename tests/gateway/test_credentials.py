"""Key sources -> credentials (gateway.upstream.credentials)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from gateway.errors import AuthenticationFailed
from gateway.upstream.credentials import CredentialResolver, oauth_path
from rules.model import KeySource, Provider


def _provider(*sources: KeySource, auth: str | None = None) -> Provider:
    return Provider("p", "http://up", sources, auth=auth)  # type: ignore[arg-type]


def _write(path: Path, token: str, expires_at_ms: float | None) -> None:
    oauth: dict[str, object] = {"accessToken": token, "refreshToken": "refresh-never-used"}
    if expires_at_ms is not None:
        oauth["expiresAt"] = expires_at_ms
    path.write_text(json.dumps({"claudeAiOauth": oauth}))


def test_env_and_value_default_to_x_api_key_and_auth_bearer_changes_the_form() -> None:
    resolver = CredentialResolver({"K": "env-secret"})
    assert resolver.resolve(_provider(KeySource("env", "K")), {}).headers == (("x-api-key", "env-secret"),)
    bearer = resolver.resolve(_provider(KeySource("value", "lit"), auth="bearer"), {})
    assert bearer.headers == (("authorization", "Bearer lit"),) and bearer.oauth_beta is False


def test_oauth_file_is_read_and_re_read_when_it_changes(tmp_path: Path) -> None:
    creds = tmp_path / "c.json"
    _write(creds, "tok-1", (time.time() + 3600) * 1000)
    resolver = CredentialResolver({})
    provider = _provider(KeySource("oauth_file", str(creds)))
    first = resolver.resolve(provider, {})
    assert first.headers == (("authorization", "Bearer tok-1"),) and first.oauth_beta is True
    _write(creds, "tok-2-longer", (time.time() + 3600) * 1000)
    assert resolver.resolve(provider, {}).headers == (("authorization", "Bearer tok-2-longer"),)


def test_oauth_default_location_follows_claude_config_dir(tmp_path: Path) -> None:
    assert oauth_path(KeySource("oauth_file"), {"CLAUDE_CONFIG_DIR": str(tmp_path)}) == str(tmp_path / ".credentials.json")
    assert oauth_path(KeySource("oauth_file"), {}) == os.path.expanduser("~/.claude/.credentials.json")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no file at"),
        ("{not json", "is not valid JSON"),
        (json.dumps({"claudeAiOauth": {}}), "holds no claudeAiOauth.accessToken"),
        (json.dumps({"claudeAiOauth": {"accessToken": "old-secret-token", "expiresAt": 1_000}}), "expired at 1970-01-01 00:00:01 UTC"),
    ],
)
def test_unusable_oauth_file_says_why_without_the_secret(tmp_path: Path, content: str | None, fragment: str) -> None:
    creds = tmp_path / "c.json"
    if content is not None:
        creds.write_text(content)
    with pytest.raises(AuthenticationFailed) as info:
        CredentialResolver({}).resolve(_provider(KeySource("oauth_file", str(creds))), {})
    assert fragment in info.value.message and str(creds) in info.value.message
    assert "old-secret-token" not in info.value.message and "refresh-never-used" not in info.value.message


def test_chain_takes_the_first_source_that_yields() -> None:
    resolver = CredentialResolver({"B": "b-secret"})
    chain = _provider(KeySource("env", "A"), KeySource("client"), KeySource("env", "B"))
    assert resolver.resolve(chain, {}).headers == (("x-api-key", "b-secret"),)
    assert resolver.resolve(chain, {"x-api-key": "from-client"}).headers == (("x-api-key", "from-client"),)


def test_exhausted_chain_names_every_source() -> None:
    with pytest.raises(AuthenticationFailed) as info:
        CredentialResolver({}).resolve(_provider(KeySource("client"), KeySource("env", "A")), {})
    assert info.value.message == (
        "no credential for provider 'p': client: the request carried no x-api-key or Authorization header; "
        "env A: environment variable A is not set"
    )


def test_client_source_passes_both_forms_as_sent_or_converts_with_auth() -> None:
    resolver = CredentialResolver({})
    both = {"x-api-key": "k", "authorization": "Bearer t"}
    assert resolver.resolve(_provider(KeySource("client")), both).headers == (
        ("x-api-key", "k"),
        ("authorization", "Bearer t"),
    )
    converted = resolver.resolve(_provider(KeySource("client"), auth="x-api-key"), {"authorization": "Bearer t"})
    assert converted.headers == (("x-api-key", "t"),)


def test_client_fingerprints_differ_per_credential_and_hide_it() -> None:
    resolver = CredentialResolver({})
    a = resolver.resolve(_provider(KeySource("client")), {"x-api-key": "secret-a"}).fingerprint
    b = resolver.resolve(_provider(KeySource("client")), {"x-api-key": "secret-b"}).fingerprint
    assert a != b and a.startswith("client#") and "secret" not in a


def test_availability_reports_without_secrets(tmp_path: Path) -> None:
    resolver = CredentialResolver({"K": "env-secret"})
    report = resolver.availability(_provider(KeySource("env", "K"), KeySource("client"), KeySource("env", "NOPE")))
    assert report == [
        {"source": "env K", "available": True},
        {"source": "client", "available": None, "detail": "taken from each request's x-api-key or Authorization header"},
        {"source": "env NOPE", "available": False, "detail": "environment variable NOPE is not set"},
    ]


def test_an_empty_key_chain_sends_no_credential_at_all() -> None:
    from gateway.upstream.credentials import NO_CREDENTIAL
    from gateway.wire.headers import upstream_headers

    keyless = Provider("ollama", "http://localhost:11434", (), preset="ollama")
    credential = CredentialResolver({}).resolve(keyless, {"x-api-key": "sk-client", "authorization": "Bearer tok"})
    assert credential is NO_CREDENTIAL and credential.headers == () and credential.fingerprint == "none"
    client = [("x-api-key", "sk-client"), ("authorization", "Bearer tok"), ("anthropic-beta", "oauth-2025-04-20,b1")]
    sent = dict(upstream_headers(client, keyless, credential))
    # Neither the client's credentials nor the OAuth beta that goes with them reach the provider.
    assert "x-api-key" not in sent and "authorization" not in sent and sent["anthropic-beta"] == "b1"


def test_availability_of_a_keyless_provider_says_nothing_is_sent() -> None:
    keyless = Provider("local", "http://localhost:11434", (), preset="ollama")
    assert CredentialResolver({}).availability(keyless) == [
        {"source": "none", "available": True, "detail": "no credential is sent (preset ollama)"}
    ]


@pytest.mark.parametrize("damage", ["\r\nx-evil: 1", "\n", "\x00", "\x7f"])
def test_a_control_character_in_a_key_is_an_unavailable_key_not_a_broken_request(tmp_path: Path, damage: str) -> None:
    creds = tmp_path / "c.json"
    _write(creds, f"sk-ant-oat01-tok{damage}", (time.time() + 3600) * 1000)
    resolver = CredentialResolver({"K": f"sk-env{damage}"})
    with pytest.raises(AuthenticationFailed) as info:
        resolver.resolve(_provider(KeySource("oauth_file", str(creds))), {})
    assert "is damaged: its access token holds a control character (run `claude` to log in again)" in info.value.message
    with pytest.raises(AuthenticationFailed) as info:
        resolver.resolve(_provider(KeySource("env", "K")), {})
    assert "environment variable K holds a control character" in info.value.message
    with pytest.raises(AuthenticationFailed):
        resolver.resolve(_provider(KeySource("value", f"sk-lit{damage}")), {})
    assert "sk-ant-oat01-tok" not in info.value.message
