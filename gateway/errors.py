"""Every error the gateway raises on purpose, in one tree with two branches.

A client of the HTTP API and a person at the command line need different things from an
error: the client an Anthropic-shaped JSON body with the status Anthropic would use (SDKs and
Claude Code handle it as they handle Anthropic's own), the person a line that says the fix and
an exit code::

    GatewayError                      (root: anything the gateway raises on purpose)
      ClientError                     500 api_error: answered as {"type":"error","error":{...}}
        InvalidRequest                400 invalid_request_error
        AuthenticationFailed          401 authentication_error
        PermissionDenied              403 permission_error  (a Host or Origin the gateway does not serve)
        NotFound                      404 not_found_error
        MethodNotAllowed              405 invalid_request_error
        RequestTooLarge               413 request_too_large
        NotSupported                  501 api_error  (count_tokens = "reject")
        UpstreamUnreachable           502 api_error
        UpstreamTimeout               504 timeout_error
        Overloaded                    529 overloaded_error
      UserError                       exit 1: printed as "Error: ..."
        UsageError                    exit 2: a command line that does not parse (usage shown)
        ConfigFailure                 exit 1: a config's problems, one per line, then the error

Upstream errors are not ClientErrors: they pass through unchanged. A config problem found by
the rule engine is ``rules.errors.ConfigError`` (``rules`` never imports ``gateway``); the
command line wraps it in ``ConfigFailure``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import orjson

from rules.errors import ConfigError, Problem

if TYPE_CHECKING:
    import argparse

__all__ = [
    "AuthenticationFailed",
    "ClientError",
    "ConfigFailure",
    "GatewayError",
    "InvalidRequest",
    "MethodNotAllowed",
    "NotFound",
    "NotSupported",
    "Overloaded",
    "PermissionDenied",
    "RequestTooLarge",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "UsageError",
    "UserError",
    "error_body",
    "sse_error_event",
]


class GatewayError(Exception):
    """The root: an error the gateway raises on purpose (never a bug)."""


# --- the client-facing branch ---------------------------------------------------------------


class ClientError(GatewayError):
    """An error answered to an HTTP client by the gateway itself. Subclasses fix status and type."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self) -> bytes:
        """The Anthropic-shaped JSON body."""
        return error_body(self.error_type, self.message)


class InvalidRequest(ClientError):
    status = 400
    error_type = "invalid_request_error"


class AuthenticationFailed(ClientError):
    status = 401
    error_type = "authentication_error"


class PermissionDenied(ClientError):
    status = 403
    error_type = "permission_error"


class NotFound(ClientError):
    status = 404
    error_type = "not_found_error"


class MethodNotAllowed(ClientError):
    status = 405
    error_type = "invalid_request_error"


class RequestTooLarge(ClientError):
    status = 413
    error_type = "request_too_large"


class NotSupported(ClientError):
    status = 501
    error_type = "api_error"


class UpstreamUnreachable(ClientError):
    status = 502
    error_type = "api_error"


class UpstreamTimeout(ClientError):
    status = 504
    error_type = "timeout_error"


class Overloaded(ClientError):
    status = 529
    error_type = "overloaded_error"


def error_body(error_type: str, message: str) -> bytes:
    """``{"type":"error","error":{"type":...,"message":...}}`` as bytes."""
    return orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}})


def sse_error_event(error_type: str, message: str) -> bytes:
    """The SSE ``error`` event that ends a stream which broke after bytes were sent."""
    return b"event: error\ndata: " + error_body(error_type, message) + b"\n\n"


# --- the user-facing branch -----------------------------------------------------------------


class UserError(GatewayError):
    """A failure a person can fix, told at the command line as ``Error: message`` (exit 1).

    ``problems`` are printed first, one per line (``file:line: path: message``).
    """

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = tuple(problems)


class UsageError(UserError):
    """A command line that does not parse: printed with the usage and a hint (exit 2)."""

    exit_code = 2

    def __init__(self, message: str, parser: argparse.ArgumentParser | None = None) -> None:
        super().__init__(message)
        self.parser = parser


class ConfigFailure(UserError):
    """A config that cannot be used: its problems are printed, one per line, before the error."""

    def __init__(self, error: ConfigError, what: str = "the config") -> None:
        count = len(error.problems)
        super().__init__(
            f"{what} has {count} error{'s' if count != 1 else ''} (above); fix "
            f"{'it' if count == 1 else 'them'} and check with `gateway validate`",
            problems=error.problems,
        )
