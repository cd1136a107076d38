"""The one HTTP client of the command line: asking a running gateway, or probing a provider.

Built on the standard library (``urllib``), so ``gateway stats`` and ``gateway doctor`` start
without loading an HTTP stack, and every command reports an unreachable gateway the same way.
HTTP error statuses are answers, not exceptions: the caller decides what a 401 means.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import UserError

__all__ = ["Answer", "Unreachable", "gateway_json", "request"]


class Unreachable(UserError):
    """Nothing answered at the URL (refused, no route, timed out)."""


@dataclass(frozen=True)
class Answer:
    """A status, the headers (lower-cased names) and the body of one HTTP answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A gateway or provider that redirects is misconfigured: show the 3xx, never follow it
    # (a credential must not travel to wherever a Location header points).
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> Answer:
    """Send one request; raises ``Unreachable`` when no HTTP answer came back."""
    prepared = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
    try:
        with _OPENER.open(prepared, timeout=timeout) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            data = exc.read()
        return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, data)
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror.lower()  # "connection refused", not "[Errno 111] Connection refused"
        raise Unreachable(f"nothing answers at {url} ({reason})") from None


def gateway_json(base_url: str, path: str, *, key: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """GET a JSON document from the gateway at ``base_url``, with the client key if there is one.

    Raises ``UserError`` with what to do: nothing answers, a 401 (set the key), or an answer
    that is not the gateway's.
    """
    from gateway.client_keys import HEADER  # the rule engine's import cost, only for this

    url = base_url.rstrip("/") + path
    try:
        answer = request("GET", url, headers={HEADER: key} if key else None, timeout=timeout)
    except Unreachable as exc:
        raise Unreachable(f"{exc.message}: is the gateway running? (`gateway doctor`)") from None
    if answer.status != 200:
        hint = " (set GATEWAY_CLIENT_KEY to the gateway's client key)" if answer.status == 401 else ""
        raise UserError(f"{url} answered {answer.status}{hint}")
    try:
        doc = answer.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise UserError(f"{url} did not answer the gateway's JSON: is that the gateway?")
    return doc
