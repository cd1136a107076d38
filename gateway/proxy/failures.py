"""How a target fails before the client saw a byte, and the one error for a request no target took.

An ``AttemptFailed`` (connect error, timeout, broken read) or a ``FellBack`` (a status in the
route's ``fallback_on``) hands the request to the route's next target. When none is left, the
client gets the last upstream answer unchanged, or ``combined()``: one gateway error naming
every target tried.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import aiohttp
import httpx

from gateway.errors import (
    AuthenticationFailed,
    ClientError,
    Overloaded,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from gateway.proxy.exchange import Exchange
from gateway.upstream.transport import AnswerTooLarge
from rules.model import Provider

__all__ = ["AttemptFailed", "FellBack", "UpstreamAnswer", "combined", "network_failure"]

# An upstream answer kept to give the client when no later target takes the request:
# (status, body, headers for the client).
UpstreamAnswer = tuple[int, bytes, dict[str, str]]


class AttemptFailed(Exception):
    """An attempt that failed before the client saw a byte; the next target may take over."""

    def __init__(self, outcome: str, detail: str, provider: str, *, connecting: bool = False) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.provider = provider
        self.connecting = connecting  # failed before a connection existed: counts toward the circuit

    @property
    def error(self) -> ClientError:
        """What the client gets when no other target takes the request."""
        if self.outcome == "timeout":
            return UpstreamTimeout(f"provider '{self.provider}' timed out: {self.detail}")
        if self.outcome == "too_large":
            return UpstreamUnreachable(f"provider '{self.provider}' answered too much: {self.detail}")
        return UpstreamUnreachable(f"provider '{self.provider}' is unreachable: {self.detail}")


class FellBack(Exception):
    """An upstream answered with a status in the route's fallback_on; the next target takes over."""

    def __init__(self, answer: UpstreamAnswer) -> None:
        super().__init__(answer[0])
        self.answer = answer


def network_failure(exc: Exception, provider: Provider) -> AttemptFailed:
    """Name what went wrong talking to the upstream, in words a user can act on.

    The transport (gateway.upstream.transport) raises the httpx exception that says what
    happened, with the socket's error as the cause for the details (refused, DNS...): an OSError
    from the HTTP/1.1 pool, aiohttp's error for an upstream reached through a proxy.
    """
    cause = exc.__cause__
    where = provider.base_url
    name = provider.name
    if isinstance(exc, AnswerTooLarge):
        return AttemptFailed("too_large", f"{where} {exc}", name)
    if isinstance(exc, httpx.ConnectError):
        if isinstance(cause, aiohttp.ClientConnectorDNSError):
            reason = f"cannot resolve host {cause.host!r}"
        elif isinstance(cause, socket.gaierror):
            reason = f"cannot resolve host {urlsplit(where).hostname!r}"
        elif isinstance(cause, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(cause, ssl.SSLError):
            reason = f"TLS failed ({getattr(cause, 'verify_message', None) or cause.reason or cause})"
        elif isinstance(cause, OSError):
            reason = cause.strerror or str(cause)
        elif isinstance(cause, aiohttp.ClientConnectorError) and isinstance(cause.os_error, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(cause, aiohttp.ClientConnectorError) and cause.os_error is not None:
            reason = cause.os_error.strerror or str(cause.os_error)
        else:
            reason = str(exc)
        return AttemptFailed("connect", f"cannot connect to {where}: {reason}", name, connecting=True)
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        detail = f"connecting to {where} timed out after {provider.connect_timeout_s:g} s"
        return AttemptFailed("timeout", detail, name, connecting=True)
    if isinstance(exc, httpx.TimeoutException):
        return AttemptFailed("timeout", f"{where} sent nothing for {provider.timeout_s:g} s", name)
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return AttemptFailed("read", f"{where} closed the connection without answering", name)
    if isinstance(cause, aiohttp.ClientPayloadError):
        return AttemptFailed("read", f"{where} broke off its answer ({cause})", name)
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)) and not isinstance(cause, aiohttp.ClientError):
        return AttemptFailed("read", f"{where} {exc}", name)  # the HTTP/1.1 pool's words
    return AttemptFailed("read", f"{where}: {(cause or exc).__class__.__name__}: {cause or exc}", name)


def combined(errors: list[ClientError], exchange: Exchange) -> ClientError:
    """One error for a request no target could take, naming every target tried."""
    if len(exchange.attempts) == 1 and len(errors) == 1:
        return errors[0]
    parts = [f"{a.provider}: {a.detail or f'answered {a.status}'}" for a in exchange.attempts]
    message = "no provider could take the request: " + "; ".join(parts)
    if errors and all(isinstance(e, AuthenticationFailed) for e in errors):
        return AuthenticationFailed(message)
    last_network = next((e for e in reversed(errors) if not isinstance(e, AuthenticationFailed)), None)
    if isinstance(last_network, (UpstreamTimeout, Overloaded)):
        return type(last_network)(message)
    return UpstreamUnreachable(message)
