"""Key sources -> the credential headers for one upstream request.

A provider's ``key`` is a chain of sources; the first that yields a credential wins. A
credential is resolved for one provider at a time, from that provider's own sources, so a
credential meant for one provider never reaches another. An empty chain (a keyless preset such
as ollama, with no ``key`` written) is ``NO_CREDENTIAL``: no credential header at all, and the
client's own are not passed on either.

The OAuth credentials file of Claude Code is read, never written: refresh tokens rotate, so a
refresh by the gateway would log Claude Code out. The file is re-read whenever its mtime, size
or inode changes (one ``stat`` per request), so a ``claude`` re-login applies at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import AuthenticationFailed
from gateway.timefmt import human
from rules.model import DEFAULT_OAUTH_FILE, KeySource, Provider

__all__ = [
    "Credential",
    "CredentialResolver",
    "KeyUnavailable",
    "NO_CREDENTIAL",
    "OAUTH_BETA",
    "OAuthFileCache",
    "OAuthToken",
    "oauth_path",
]

OAUTH_BETA = "oauth-2025-04-20"


@dataclass(frozen=True, slots=True)
class Credential:
    """The headers that authenticate one upstream request, and where they came from."""

    headers: tuple[tuple[str, str], ...]
    source: KeySource | None  # None: the provider takes no credential (an empty key chain)
    # The oauth beta Anthropic wants beside an OAuth bearer token: True adds it (our own OAuth
    # token), False removes it (an API key does not go with it), None leaves the client's
    # betas as they are (the client's own credentials, passed through).
    oauth_beta: bool | None
    # Names the credential without revealing it: cooldowns are kept per credential.
    fingerprint: str = ""


# A keyless provider's: no header; False removes the client's OAuth beta, which names a
# credential the provider never gets. The fingerprint keeps cooldowns apart from keyed ones.
NO_CREDENTIAL = Credential((), None, False, "none")


class KeyUnavailable(Exception):
    """A key source that yields nothing right now; the message says why (never the secret)."""


def oauth_path(source: KeySource, env: Mapping[str, str]) -> str:
    """The credentials file a source reads: its own path, else Claude Code's default location."""
    if source.ref:
        return os.path.expanduser(source.ref)
    config_dir = env.get("CLAUDE_CONFIG_DIR")
    if config_dir:
        return os.path.join(os.path.expanduser(config_dir), ".credentials.json")
    return os.path.expanduser(DEFAULT_OAUTH_FILE)


@dataclass(frozen=True, slots=True)
class OAuthToken:
    access_token: str
    expires_at_ms: int | None

    def expired(self, now_ms: float) -> bool:
        return self.expires_at_ms is not None and now_ms >= self.expires_at_ms


class OAuthFileCache:
    """Tokens read from credentials files, re-read when the file changes on disk."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[int, int, int], OAuthToken | KeyUnavailable]] = {}

    def token(self, path: str) -> OAuthToken:
        """The file's token; raises KeyUnavailable naming the path and the reason."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise KeyUnavailable(
                f"no file at {path} (log in with `claude` first, or use {{ client = true }})"
            ) from None
        except OSError as exc:
            raise KeyUnavailable(f"cannot read {path}: {exc.strerror}") from None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._entries.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, self._read(path))
            self._entries[path] = cached
        result = cached[1]
        if isinstance(result, KeyUnavailable):
            raise result
        return result

    @staticmethod
    def _read(path: str) -> OAuthToken | KeyUnavailable:
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read())
        except OSError as exc:
            return KeyUnavailable(f"cannot read {path}: {exc.strerror}")
        except ValueError:
            return KeyUnavailable(f"{path} is not valid JSON (run `claude` to log in again)")
        oauth = doc.get("claudeAiOauth") if isinstance(doc, dict) else None
        token = oauth.get("accessToken") if isinstance(oauth, dict) else None
        if not isinstance(token, str) or not token:
            return KeyUnavailable(f"{path} holds no claudeAiOauth.accessToken (run `claude` to log in)")
        if not token.isprintable():
            # It could not go in a header (the request would fail as if the provider were down).
            return KeyUnavailable(
                f"the Claude login in {path} is damaged: its access token holds a control character "
                "(run `claude` to log in again)"
            )
        expires = oauth.get("expiresAt") if isinstance(oauth, dict) else None
        return OAuthToken(token, int(expires) if isinstance(expires, (int, float)) else None)


def _client_credentials(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The client's (x-api-key, Authorization) header values, if it sent them."""
    return headers.get("x-api-key") or None, headers.get("authorization") or None


def _client_fingerprint(api_key: str | None, authorization: str | None) -> str:
    digest = hashlib.blake2b(f"{api_key}\0{authorization}".encode(), digest_size=6).hexdigest()
    return f"client#{digest}"


def _bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else authorization


def _in_form(secret: str, form: str) -> tuple[tuple[str, str], ...]:
    if form == "bearer":
        return (("authorization", f"Bearer {secret}"),)
    return (("x-api-key", secret),)


class CredentialResolver:
    """Resolves a provider's key chain for a request. One per worker (it owns the OAuth cache)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.oauth = OAuthFileCache()

    def _from_source(self, provider: Provider, source: KeySource, client: Mapping[str, str]) -> Credential:
        if source.kind == "env":
            secret = self.env.get(source.ref)
            if not secret:
                raise KeyUnavailable(f"environment variable {source.ref} is not set")
            if not secret.isprintable():
                raise KeyUnavailable(
                    f"environment variable {source.ref} holds a control character (a line break copied "
                    "with the key?): set it again without it"
                )
            return Credential(_in_form(secret, provider.auth or "x-api-key"), source, False)
        if source.kind == "value":
            if not source.ref.isprintable():
                raise KeyUnavailable("the key written in routes.toml holds a control character: write it again without it")
            return Credential(_in_form(source.ref, provider.auth or "x-api-key"), source, False)
        if source.kind == "oauth_file":
            path = oauth_path(source, self.env)
            token = self.oauth.token(path)
            if token.expired(time.time() * 1000):
                raise KeyUnavailable(
                    f"the Claude login in {path} expired at {human((token.expires_at_ms or 0) / 1000)}; "
                    "run `claude` to renew it (the gateway never refreshes it itself)"
                )
            form = provider.auth or "bearer"
            return Credential(_in_form(token.access_token, form), source, form == "bearer" or None)
        api_key, authorization = _client_credentials(client)
        if api_key is None and authorization is None:
            raise KeyUnavailable("the request carried no x-api-key or Authorization header")
        if provider.auth is None:
            # The client's own form, exactly as it was sent.
            sent: list[tuple[str, str]] = []
            if api_key is not None:
                sent.append(("x-api-key", api_key))
            if authorization is not None:
                sent.append(("authorization", authorization))
            return Credential(tuple(sent), source, None, _client_fingerprint(api_key, authorization))
        secret = api_key if api_key is not None else _bearer_token(authorization or "")
        return Credential(_in_form(secret, provider.auth), source, None, _client_fingerprint(api_key, authorization))

    def resolve(self, provider: Provider, client: Mapping[str, str]) -> Credential:
        """The first credential the provider's chain yields; AuthenticationFailed names each source tried."""
        if not provider.key:
            return NO_CREDENTIAL
        reasons: list[str] = []
        for source in provider.key:
            try:
                return self._from_source(provider, source, client)
            except KeyUnavailable as exc:
                reasons.append(f"{source.describe()}: {exc}")
        raise AuthenticationFailed(f"no credential for provider '{provider.name}': " + "; ".join(reasons))

    def availability(self, provider: Provider) -> list[dict[str, object]]:
        """Per key source: is a credential available right now? For /health and `explain`; no secrets."""
        if not provider.key:
            why = f" (preset {provider.preset})" if provider.preset else ""
            return [{"source": "none", "available": True, "detail": f"no credential is sent{why}"}]
        out: list[dict[str, object]] = []
        for source in provider.key:
            entry: dict[str, object] = {"source": source.describe()}
            if source.kind == "client":
                entry["available"] = None
                entry["detail"] = "taken from each request's x-api-key or Authorization header"
            else:
                try:
                    self._from_source(provider, source, {})
                    entry["available"] = True
                except KeyUnavailable as exc:
                    entry["available"] = False
                    entry["detail"] = str(exc)
            out.append(entry)
        return out
