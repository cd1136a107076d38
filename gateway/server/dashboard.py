"""The dashboard at ``/``: the page, its two files, its JSON, and who may see them.

The page (``static/``) is plain HTML, CSS and JavaScript, shipped in the package and read once;
its script fetches ``/dashboard.json`` from the same origin every 1.5 s, so nothing is fetched
from anywhere else and no CORS is involved (the Content-Security-Policy allows only 'self').

Who may see it (``refusal``):

- a loopback client (this machine), with no key (a web page's DNS rebinding trick, a ``Host``
  the gateway does not answer to, was refused at the edge: ``gateway.server.edge``);
- with ``client_keys``, any client presenting a key: HTTP Basic with the key as the password
  (a browser asks for it), ``x-gateway-key``, or ``Authorization: Bearer``; else 401;
- without ``client_keys`` on a LAN bind, no other machine (403): no key exists that could let
  it in, so a 401 would only make the browser ask for one in vain.

With client keys, a request that came through a proxy (``Forwarded``/``X-Forwarded-For``) is
not taken for this machine's own, even from a loopback address.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import time
from pathlib import Path

from sanic import Request
from sanic.response import HTTPResponse, json

from gateway.client_keys import HEADER
from gateway.errors import error_body
from gateway.ops import metrics
from gateway.ops.dashboard import dashboard_document
from gateway.ops.health import health_report
from gateway.ops.ledger.worker import WorkerLedger
from gateway.ops.requestlog import log_refusal
from gateway.server.access import AccessControl
from gateway.server.runtime import Runtime
from gateway.settings import is_loopback

__all__ = ["ASSETS", "PATHS", "data", "page", "refusal"]

_STATIC = Path(__file__).with_name("static")
# Read once: they are a few kilobytes and never change while the gateway runs.
ASSETS: dict[str, tuple[bytes, str]] = {
    "/": ((_STATIC / "index.html").read_bytes(), "text/html; charset=utf-8"),
    "/dashboard.js": ((_STATIC / "dashboard.js").read_bytes(), "text/javascript; charset=utf-8"),
    "/dashboard.css": ((_STATIC / "dashboard.css").read_bytes(), "text/css; charset=utf-8"),
}
PATHS = frozenset({*ASSETS, "/dashboard.json"})

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "content-security-policy": _CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}
log = logging.getLogger("gateway.access")

_REALM = 'Basic realm="claude-gateway dashboard", charset="UTF-8"'
_FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


def _presented_key(request: Request) -> str | None:
    """The key as x-gateway-key, the password of HTTP Basic, or a Bearer token."""
    headers = request.headers
    key = headers.get(HEADER)
    if key:
        return str(key)
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]  # any user name: the password is the key
    return None


def _refuse(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> HTTPResponse:
    """401 (a key would help: counted and logged as the API's refusals are) or 403 (none would)."""
    if status == 401:
        gate: AccessControl = request.app.ctx.access
        reason = "invalid" if _presented_key(request) else "missing"
        metrics.instance().refused(reason)
        log_refusal(request.client_ip, request.method, request.path, reason, fmt=gate.log_format)
    else:
        log.warning("dashboard refused client=%s %s %s status=403: %s", request.client_ip, request.method,
                    request.path, message.split(":")[0])
    body = error_body("authentication_error" if status == 401 else "permission_error", message)
    return HTTPResponse(body, status=status, headers=headers or {}, content_type="application/json")


def refusal(request: Request) -> HTTPResponse | None:
    """None when ``request`` may see the dashboard; else the 401 or 403 (the module docstring)."""
    gate: AccessControl = request.app.ctx.access
    accepted = gate.current()
    headers = request.headers
    proxied = accepted.required and any(name in headers for name in _FORWARDED)
    if is_loopback(request.ip) and not proxied:
        # A web page's DNS rebinding never gets here: the edge (server/edge.py) answered its
        # Host with 403 already.
        return None
    if not accepted.required:
        return _refuse(request, 403, (
            "the dashboard answers this machine only: this gateway has no server.client_keys, so no key "
            "could let another machine in; set client_keys in routes.toml and sign in with a key as the password"
        ))
    if accepted.accepts(_presented_key(request)):
        return None
    return _refuse(
        request, 401,
        "the dashboard needs a client key: sign in with any user name and the key as the password, "
        f"or send it in the {HEADER} header",
        {"www-authenticate": _REALM},
    )


async def page(request: Request) -> HTTPResponse:
    """GET /, /dashboard.js, /dashboard.css: the page and its files."""
    body, content_type = ASSETS[request.path]
    return HTTPResponse(body, content_type=content_type, headers=_HEADERS)


async def data(request: Request) -> HTTPResponse:
    """GET /dashboard.json?tz=MINUTES: what the page shows (gateway.ops.dashboard)."""
    runtime: Runtime = request.app.ctx.runtime
    ledger: WorkerLedger = request.app.ctx.ledger
    try:
        tz = int(request.args.get("tz", "0"))
    except ValueError:
        tz = 0
    tz = max(-14 * 60, min(14 * 60, tz)) // 15 * 15  # every real offset is whole quarter hours
    health = health_report(
        runtime.live, runtime.credentials, runtime.health, os.environ, limits=runtime.limits, quota=runtime.quota
    )
    usage = await ledger.view(tz)
    doc = dashboard_document(health, runtime.live.current.ruleset, usage, ledger.status(), time.time())
    return json(doc, headers={**_HEADERS, "cache-control": "no-store"})
