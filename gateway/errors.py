"""Every error the gateway raises on purpose, in one tree with two branches.

A client of the HTTP API and a person at the command line need different things from an
error: the client an Anthropic-shaped JSON body with the status Anthropic would use (SDKs and
Claude Code handle it as they handle Anthropic's own), the person a line that says the fix and
an exit code::

    GatewayError                      (root: anything the gateway raises on purpose)
      ClientError                     500 api_error: answered as {"type":"error","error":{...}}
        InvalidRequest                400 invalid_request_error           no retry
        AuthenticationFailed          401 authentication_error            no retry
        PermissionDenied              403 permission_error  (a Host or Origin the gateway does not serve)   no retry
        NotFound                      404 not_found_error                 no retry
        MethodNotAllowed              405 invalid_request_error           no retry
        RequestTooLarge               413 request_too_large               no retry
        NotSupported                  501 api_error  (count_tokens = "reject")   no retry
        UpstreamUnreachable           502 api_error
        UpstreamTimeout               504 timeout_error
        Overloaded                    529 overloaded_error
      UserError                       exit 1: printed as "Error: ..."
        UsageError                    exit 2: a command line that does not parse (usage shown)
        ConfigFailure                 exit 1: a config's problems, one per line, then the error

"no retry": a retry cannot fix it, so the answer carries ``x-should-retry: false`` and Claude
Code shows the message at once instead of retrying for minutes (a 401 without it is retried
about ten times). The others are left to the client's own retry policy.

Upstream errors are not ClientErrors: an Anthropic-shaped one passes through unchanged, any
other shape is translated into Anthropic's (``gateway.wire.errors``). A config problem found by
the rule engine is ``rules.errors.ConfigError`` (``rules`` never imports ``gateway``); the
command line wraps it in ``ConfigFailure``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import orjson

if TYPE_CHECKING:
    # Annotations only: importing `rules` costs ~60 ms, and `gateway statusline` (run at every
    # prompt render) needs this module without it.
    import argparse

    from rules.errors import ConfigError, Problem

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
    "SHOULD_RETRY",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "UsageError",
    "UserError",
    "error_body",
    "sse_error_event",
]


# The header Anthropic's SDKs (and Claude Code) obey over their own retry policy.
SHOULD_RETRY = "x-should-retry"


class GatewayError(Exception):
    """The root: an error the gateway raises on purpose (never a bug)."""


# --- the client-facing branch ---------------------------------------------------------------


class ClientError(GatewayError):
    """An error answered to an HTTP client by the gateway itself. Subclasses fix status and type."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"
    # False: the same request can only fail the same way (answered with x-should-retry: false).
    retryable: ClassVar[bool] = True

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
    retryable = False


class AuthenticationFailed(ClientError):
    status = 401
    error_type = "authentication_error"
    retryable = False


class PermissionDenied(ClientError):
    status = 403
    error_type = "permission_error"


class NotFound(ClientError):
    status = 404
    error_type = "not_found_error"
    retryable = False


class MethodNotAllowed(ClientError):
    status = 405
    error_type = "invalid_request_error"
    retryable = False


class RequestTooLarge(ClientError):
    status = 413
    error_type = "request_too_large"
    retryable = False


class NotSupported(ClientError):
    status = 501
    error_type = "api_error"
    retryable = False


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
