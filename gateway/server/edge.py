"""The door: what every request must be before the gateway looks at what it asks.

Checked first, before client keys and routing (``edge_middleware``, registered in
``server/app.py``); each refusal is Anthropic-shaped and says the fix:

- **A well-formed head** (RFC 9110 5.1 and 5.5, RFC 9112 5): header names are tokens (no space
  or tab before the colon, no control character), no obsolete folded line, no control character
  in a value (CR, LF, NUL...). Sanic reads ``X-Api-Key : v`` as a header named ``x-api-key ``,
  which no strip list recognises and an upstream that trims names reads as a second credential
  (or a second Host, a second Transfer-Encoding); a control character in a value broke the
  upstream request (502, counted against the provider). 400, before anything goes upstream.
- **A Host the gateway answers to**: localhost, 127.0.0.1, [::1], the address it listens on,
  ``[server] allowed_hosts``, and on a wildcard bind (0.0.0.0, ::) any IP address, so a LAN
  client's ``Host: 192.168.1.10:8082`` works. A web page that points a DNS name of its own at
  127.0.0.1 (DNS rebinding) sends that name: 403, /health included.
- **No browser context**: an ``Origin`` header (browsers send it; Claude Code, the SDKs and curl
  do not) unless its host is listed in ``allowed_hosts``: 403; a POST to the API whose body is
  not ``application/json``: 400 (a page may send ``text/plain`` to any site without asking;
  ``application/json`` needs a CORS preflight, which the gateway never grants).

Cost per request (``tests/gateway/bench_edge.py``): one regex over the head, two dict look-ups,
a string comparison; Host values are decided once each and remembered per config generation.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Protocol

from sanic import Request
from sanic.exceptions import BadRequest, PayloadTooLarge
from sanic.http import Http
from sanic.response import HTTPResponse

from gateway.errors import ClientError, InvalidRequest, PermissionDenied, RequestTooLarge
from gateway.ops.requestlog import log_refusal
from gateway.reload.live import LiveConfig
from rules.redact import concealed, looks_secret

__all__ = ["Edge", "HeaderView", "Refusal", "edge_middleware", "head_refusal", "malformed"]

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_VALUE = rb"[\t\x20-\x7e\x80-\xff]*"  # visible ASCII, space, tab, and bytes of UTF-8 text
_REQUEST_LINE = _TOKEN + rb" [\x21-\x7e]+ HTTP/1\.[01]"  # as Sanic splits it, the target printable
_WELL_FORMED = re.compile(_REQUEST_LINE + rb"(?:\r\n" + _TOKEN + rb":" + _VALUE + rb")*")
_REQUEST_LINE_RE = re.compile(_REQUEST_LINE)
_TOKEN_RE = re.compile(_TOKEN)
_VALUE_RE = re.compile(_VALUE)

_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_WILDCARD = frozenset({"0.0.0.0", "::", ""})
_JSON = "application/json"
_SEEN_LIMIT = 256  # distinct Host values remembered (a client choosing them cannot grow it further)
_SHOWN = 80

# Why a request was refused (a word for the log) and the error it is answered with.
Refusal = tuple[str, ClientError]


class HeaderView(Protocol):
    """What the edge reads of the request headers: Sanic's ``Header`` (a case-insensitive multidict)."""

    def get(self, key: str, /) -> str | None: ...

    def getall(self, key: str, default: list[str], /) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class _Hosts:
    """Who the gateway answers to under one config generation."""

    generation: int
    names: frozenset[str]  # Host names (lower case, IPv6 without brackets)
    origins: frozenset[str]  # an Origin's host must be one of these: allowed_hosts as written
    any_host: bool  # allowed_hosts holds "*"
    any_ip: bool  # a wildcard bind: every IP literal is one of our addresses, or a LAN client's view of one
    described: str  # for the 403 message


class Edge:
    """The per-worker door. ``bind_host``: the address the gateway listens on."""

    __slots__ = ("_live", "_bind", "_hosts", "_seen")

    def __init__(self, live: LiveConfig, bind_host: str) -> None:
        self._live = live
        self._bind = _bare(bind_host)
        self._hosts = _Hosts(-1, frozenset(), frozenset(), False, False, "")
        self._seen: dict[str, bool] = {}

    def _current(self) -> _Hosts:
        loaded = self._live.current
        hosts = self._hosts
        if hosts.generation != loaded.generation:
            listed = loaded.ruleset.server.allowed_hosts
            any_ip = self._bind in _WILDCARD
            names = frozenset((*_LOOPBACK, *listed) + (() if any_ip else (self._bind,)))
            parts = ["localhost, 127.0.0.1, [::1]"]
            parts.append("any IP address of this machine" if any_ip else f"{self._bind} (where it listens)")
            if listed:
                parts.append(", ".join(listed) + " (server.allowed_hosts)")
            hosts = _Hosts(
                loaded.generation, names, frozenset(h for h in listed if h != "*"), "*" in listed, any_ip,
                ", ".join(parts),
            )
            self._hosts = hosts
            self._seen = {}
        return hosts

    def refusal(self, head: bytes, headers: HeaderView, method: str, path: str) -> Refusal | None:
        """None for a request the gateway may look at; else why (``head``, ``host``, ``origin``,
        ``content_type``: for the log) and the error to answer it with."""
        if _WELL_FORMED.fullmatch(head) is None or not (head.isascii() or _is_utf8(head)):
            return "head", InvalidRequest(f"malformed request head: {malformed(head)}")
        hosts = self._current()
        host = headers.get("host")
        if host is None or not self._host_allowed(host, hosts) or len(headers.getall("host", [])) > 1:
            return self._host_refusal(head, headers, host, hosts)
        origin = headers.get("origin")
        if origin is not None and not _origin_allowed(origin, hosts):
            return "origin", PermissionDenied(
                f"requests from web pages are refused (Origin {_show(origin)}): the gateway serves "
                "Claude Code and API clients, which send no Origin; to allow pages from a host of "
                "yours, list that host in [server] allowed_hosts in routes.toml"
            )
        if method == "POST":  # every POST the gateway serves is an API call
            kind = headers.get("content-type")
            if kind != _JSON and (kind is None or kind.partition(";")[0].strip().lower() != _JSON):
                return "content_type", InvalidRequest(
                    f"{method} {path} needs content-type: application/json (this request sent "
                    f"{_show(kind) if kind is not None else 'none'}); the gateway refuses other types "
                    "so that a web page cannot send it requests"
                )
        return None

    def _host_allowed(self, value: str, hosts: _Hosts) -> bool:
        known = self._seen.get(value)
        if known is None:
            name = _host_name(value)
            known = hosts.any_host or (
                name is not None and (name in hosts.names or (hosts.any_ip and _is_ip(name)))
            )
            if len(self._seen) >= _SEEN_LIMIT:
                self._seen.clear()
            self._seen[value] = known
        return known

    def _host_refusal(self, head: bytes, headers: HeaderView, host: str | None, hosts: _Hosts) -> Refusal | None:
        """The answer for a missing, repeated or foreign Host (None: an HTTP/1.0 request without one)."""
        if len(headers.getall("host", [])) > 1:
            return "head", InvalidRequest("malformed request head: more than one Host header (RFC 9112 3.2)")
        if host is None:
            if head.split(b"\r\n", 1)[0].endswith(b"HTTP/1.0"):
                return None  # HTTP/1.0 may leave Host out; no browser does
            return "head", InvalidRequest("malformed request head: an HTTP/1.1 request needs a Host header (RFC 9112 3.2)")
        return "host", PermissionDenied(
            f"this gateway does not answer to Host {_show(host)}: it answers to {hosts.described}. "
            "If clients reach it by that name, add the name to [server] allowed_hosts in routes.toml "
            "(requests for other names are refused so that a web page cannot reach the gateway "
            "through a DNS name of its own)"
        )


def _bare(host: str) -> str:
    """A host as the Host header names it: lower case, IPv6 without brackets, no trailing dot."""
    host = host.strip().lower().rstrip(".")
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _host_name(value: str) -> str | None:
    """The name in a Host value (``name``, ``name:port``, ``[v6]:port``); None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        port = value[end + 1:]
        if end < 0 or (port and not (port[0] == ":" and (port[1:].isdigit() or port == ":"))):
            return None
        return value[1:end]
    name, colon, port = value.partition(":")
    if colon and port and not port.isdigit():
        return None  # an unbracketed IPv6 address, or junk
    return name.rstrip(".") or None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _origin_allowed(origin: str, hosts: _Hosts) -> bool:
    """True when the Origin's host is listed in allowed_hosts ("null" and the like never are)."""
    scheme, sep, rest = origin.partition("://")
    name = _host_name(rest) if sep else None
    return name is not None and name in hosts.origins


def _is_utf8(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _show(value: str) -> str:
    """A client's header value in a message: quoted, printable, shortened, never a credential."""
    if looks_secret(value):
        return concealed(value)
    text = value if len(value) <= _SHOWN else value[: _SHOWN - 3] + "..."
    return "'" + "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text) + "'"


def malformed(head: bytes) -> str:
    """What is wrong with a head the one-regex check refused, in words (never a header's value).

    Also for the heads Sanic's own parser refuses (a line without a colon), answered from
    ``server/app.py``.
    """
    lines = head.split(b"\r\n")
    if _REQUEST_LINE_RE.fullmatch(lines[0]) is None:
        return "the request line is not METHOD TARGET HTTP/1.1 with a target in printable ASCII"
    for number, line in enumerate(lines[1:], start=1):
        if line[:1] in (b" ", b"\t"):
            return (f"header line {number} starts with whitespace, an obsolete folded continuation "
                    "(RFC 9112 5.2); send each header on one line")
        name, _, value = line.partition(b":")
        if _TOKEN_RE.fullmatch(name) is None:
            return _bad_name(number, name)
        shown = _show(name.decode("ascii"))
        if _VALUE_RE.fullmatch(value) is None:
            return (f"the value of header {shown} holds a control character (CR, LF, NUL...), "
                    "which a header value cannot hold (RFC 9110 5.5)")
        if not _is_utf8(value):
            return f"the value of header {shown} is neither ASCII nor UTF-8 text"
    return "it does not parse"


def _bad_name(number: int, name: bytes) -> str:
    """The message for a header name with a character a name cannot hold; shows only what precedes it."""
    if not name:
        return f"header line {number} has no name before its colon"
    start = _TOKEN_RE.match(name)
    good = start.group() if start is not None else b""
    bad = name[len(good):len(good) + 1]
    what = {b" ": "a space", b"\t": "a tab", b"": "nothing"}.get(bad, f"byte 0x{bad.hex()}")
    where = "before the colon" if good and name[len(good):].strip(b" \t") == b"" else "in the name"
    before = f"after {_show(good.decode('ascii'))} " if good else "at the start "
    return (f"header line {number} has {what} {before}{where}; a header name is a token, without "
            "whitespace or control characters (RFC 9110 5.1)")


# --- in Sanic ----------------------------------------------------------------------------------


def edge_middleware(request: Request) -> HTTPResponse | None:
    """The first request middleware: ``Edge.refusal`` answered, logged, and the connection closed
    after a malformed head (how its body is framed is in doubt: no request is read after it)."""
    head = request.head
    if not head:
        return None  # Sanic could not parse the request: its own error is answered (head_refusal)
    edge: Edge = request.app.ctx.edge
    refused = edge.refusal(head, request.headers, request.method, request.path)
    if refused is None:
        return None
    reason, error = refused
    if reason == "head" and isinstance(request.stream, Http):
        request.stream.keep_alive = False
    log_refusal(request.client_ip, request.method, request.path, reason,
                fmt=request.app.ctx.settings.log_format, status=error.status)
    # A retry cannot fix what the edge refuses: Claude Code then shows the message at once.
    return HTTPResponse(error.body(), status=error.status, headers={"x-should-retry": "false"},
                        content_type="application/json")


def head_refusal(request: Request, exc: Exception) -> tuple[int, str, str] | None:
    """Status, type and message for a head Sanic's parser refused before a request existed.

    Sanic says "Request header exceeds the size limit" for a long URL and many headers alike
    (and the error handler took it for a large body), and "Bad Request" for a line without a
    colon: here 414 or 431 with the limit, and 400 with what is wrong.
    """
    received = bytes(getattr(request.stream, "recv_buffer", b""))
    if isinstance(exc, PayloadTooLarge) and "header" in str(exc).lower():
        limit = getattr(request.stream, "HEADER_MAX_SIZE", 0) or request.app.config.REQUEST_MAX_HEADER_SIZE
        line = received.find(b"\r\n")
        if line < 0 or line > limit // 2:
            size = "more than the limit" if line < 0 else f"{line:,} bytes"
            return 414, RequestTooLarge.error_type, (
                f"the request line (method and URL) is {size}; the gateway reads a request line and "
                f"headers of up to {limit:,} bytes together: shorten the URL"
            )
        return 431, RequestTooLarge.error_type, (
            f"the request headers are larger than the gateway's limit of {limit:,} bytes (request line "
            "and headers together); send fewer or shorter headers"
        )
    head = received.partition(b"\r\n\r\n")[0]
    if isinstance(exc, BadRequest) and not request.head and head:
        return 400, InvalidRequest.error_type, f"malformed request head: {malformed(head)}"
    return None
