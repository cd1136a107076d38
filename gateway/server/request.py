"""The gateway's Sanic request class: a request whose URL httptools refuses still gets its 400.

Sanic parses the URL when it builds the request; when that fails (a control character in the
target, say) it builds an empty request to answer the error with, from the same URL, which fails
again: the connection then closes with no answer and a traceback in the log. Here the empty
request (method ``NONE``) falls back to ``/``, so the error handler answers 400 and says what
was wrong (``server/app.py``).
"""

from __future__ import annotations

from typing import Any

from sanic import Request
from sanic.exceptions import BadURL

__all__ = ["GatewayRequest"]


class GatewayRequest(Request):
    """Sanic's Request; the stand-in built to answer a parse error never fails on the URL."""

    def __init__(self, url_bytes: bytes, headers: Any, version: str, method: str, transport: Any, app: Any,
                 head: bytes = b"", stream_id: int = 0) -> None:
        try:
            super().__init__(url_bytes, headers, version, method, transport, app, head, stream_id)
        except BadURL:
            if method != "NONE":
                raise  # the real request: Sanic answers it through the stand-in built next
            super().__init__(b"/", headers, version, method, transport, app, head, stream_id)
