"""Errors the gateway itself answers with, in the Anthropic error shape.

Every error a client sees is ``{"type": "error", "error": {"type": T, "message": M}}`` with the
status Anthropic would use, so SDKs and Claude Code handle it as they handle Anthropic's own::

    GatewayError                  500 api_error
      InvalidRequest              400 invalid_request_error
      AuthenticationFailed        401 authentication_error
      NotFound                    404 not_found_error
      MethodNotAllowed            405 invalid_request_error
      RequestTooLarge             413 request_too_large
      NotSupported                501 api_error  (count_tokens = "reject", modes not built)
      UpstreamUnreachable         502 api_error
      UpstreamTimeout             504 timeout_error
      Overloaded                  529 overloaded_error

Upstream errors are not GatewayErrors: they pass through unchanged.
"""

from __future__ import annotations

from typing import ClassVar

import orjson


class GatewayError(Exception):
    """An error answered by the gateway itself. Subclasses fix the status and error type."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self) -> bytes:
        """The Anthropic-shaped JSON body."""
        return error_body(self.error_type, self.message)


class InvalidRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"


class AuthenticationFailed(GatewayError):
    status = 401
    error_type = "authentication_error"


class NotFound(GatewayError):
    status = 404
    error_type = "not_found_error"


class MethodNotAllowed(GatewayError):
    status = 405
    error_type = "invalid_request_error"


class RequestTooLarge(GatewayError):
    status = 413
    error_type = "request_too_large"


class NotSupported(GatewayError):
    status = 501
    error_type = "api_error"


class UpstreamUnreachable(GatewayError):
    status = 502
    error_type = "api_error"


class UpstreamTimeout(GatewayError):
    status = 504
    error_type = "timeout_error"


class Overloaded(GatewayError):
    status = 529
    error_type = "overloaded_error"


def error_body(error_type: str, message: str) -> bytes:
    """``{"type":"error","error":{"type":...,"message":...}}`` as bytes."""
    return orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}})


def sse_error_event(error_type: str, message: str) -> bytes:
    """The SSE ``error`` event that ends a stream which broke after bytes were sent."""
    return b"event: error\ndata: " + error_body(error_type, message) + b"\n\n"
