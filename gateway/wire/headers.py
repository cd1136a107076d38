"""Which headers cross the gateway, in each direction.

Upstream: the client's headers go through (anthropic-version, anthropic-beta per the provider's
policy, user-agent, x-app, x-claude-code-session-id, x-stainless-*...) except hop-by-hop and
transport headers, which the upstream connection sets itself, and credentials: the client's
``x-api-key`` / ``Authorization`` are removed and the target's own credential is added (which is
the client's again only when the key source is ``client``). The gateway key never leaves.

Downstream: the upstream's status and body go back with the headers a client needs
(content-type, request-id, retry-after, anthropic-ratelimit-*, ...), never hop-by-hop ones.

In both directions the headers a ``Connection`` header names are hop-by-hop too (RFC 9110
7.6.1): they were meant for this hop only. ``Connection: keep-alive`` (what clients send) names
none beyond the fixed list, so the usual request pays one comparison for it.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway import __version__
from gateway.upstream.credentials import OAUTH_BETA, Credential
from rules.model import Provider

__all__ = ["USER_AGENT", "downstream_headers", "upstream_headers"]

# Set by the upstream connection, or by the server for the client connection (RFC 9110 7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

_NOT_FORWARDED_UP = _HOP_BY_HOP | {
    "host",
    "content-length",  # recomputed for the body actually sent
    # Identity on the upstream leg: the gateway reads usage and thinking signatures in the
    # stream, and compression buys nothing on loopback and little on SSE.
    "accept-encoding",
    "x-api-key",
    "authorization",
    "x-gateway-key",
    "cookie",
    "anthropic-beta",  # re-added below, per the provider's beta policy
    "expect",
}

USER_AGENT = f"claude-gateway/{__version__}"

_NOT_FORWARDED_DOWN = _HOP_BY_HOP | {
    "content-length",  # the server sets it for the body it sends
    # content-encoding goes through: an upstream that compressed despite identity sends the
    # bytes as they came, with the header that says how to read them (proxy/relay.py).
    "server",
    "date",
    "alt-svc",
    "set-cookie",
}


_PLAIN_CONNECTION = frozenset({"keep-alive", "close"})


def _named(value: str, fixed: frozenset[str]) -> frozenset[str]:
    """The header names a Connection value lists, beyond those dropped anyway."""
    if value.lower() in _PLAIN_CONNECTION:
        return frozenset()
    return frozenset(n.strip().lower() for n in value.split(",")) - fixed


def upstream_headers(
    client_headers: Iterable[tuple[str, str]],
    provider: Provider,
    credential: Credential,
) -> list[tuple[str, str]]:
    """The headers for one upstream request to ``provider`` with ``credential``."""
    out: list[tuple[str, str]] = []
    betas: list[str] = []
    # The provider's own `headers` replace the client's of the same name (e.g. user-agent).
    replaced = provider.header_names
    user_agent = "user-agent" in replaced
    hop: frozenset[str] = frozenset()
    for name, value in client_headers:
        lower = name.lower()
        if lower == "anthropic-beta":
            betas.append(value)
        elif lower not in _NOT_FORWARDED_UP and lower not in replaced:
            out.append((lower, value))
            user_agent = user_agent or lower == "user-agent"
        elif lower == "connection":
            hop |= _named(value, _HOP_BY_HOP)
    if hop:
        out = [(k, v) for k, v in out if k not in hop]
        betas = [] if "anthropic-beta" in hop else betas
        user_agent = "user-agent" in replaced or any(k == "user-agent" for k, _ in out)
    beta = provider.betas.apply(",".join(betas) if betas else None)
    if credential.oauth_beta is not None:
        values = [b.strip() for b in beta.split(",")] if beta else []
        values = [b for b in values if b and b != OAUTH_BETA]
        if credential.oauth_beta:
            values.append(OAUTH_BETA)  # appended to the client's betas, never replacing them
        beta = ",".join(values) or None
    if beta:
        out.append(("anthropic-beta", beta))
    out.extend(provider.headers)
    if not user_agent:
        out.append(("user-agent", USER_AGENT))  # else the HTTP library would name itself
    out.append(("accept-encoding", "identity"))
    out.extend(credential.headers)
    return out


def downstream_headers(upstream: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The upstream response headers worth giving the client (request-id, retry-after, ratelimits...)."""
    out: dict[str, str] = {}
    hop: frozenset[str] = frozenset()
    for name, value in upstream:
        lower = name.lower()
        if lower not in _NOT_FORWARDED_DOWN:
            out[name] = value
        elif lower == "connection":
            hop |= _named(value, _NOT_FORWARDED_DOWN)
    if hop:
        out = {k: v for k, v in out.items() if k.lower() not in hop}
    return out
