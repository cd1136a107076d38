"""What ``gateway explain MODEL --request FILE`` prints: each target's request, as it would leave.

For every target of the route that MODEL matches: the upstream URL, the headers (secrets
redacted) and the body, each shown as a unified diff against what the client sent, so the
lines that the wire policy changed stand out. Nothing is sent anywhere.

FILE is a Messages API request body (JSON), or a captured request with ``method``, ``path``,
``headers`` and ``body`` (the format of the captured Claude Code requests). Its ``model`` is
replaced by MODEL when they differ.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.errors import AuthenticationFailed, InvalidRequest
from gateway.upstream.credentials import Credential, CredentialResolver
from gateway.wire.body import RequestBody, parse_body
from gateway.wire.headers import upstream_headers
from gateway.wire.rewrite import rewrite
from gateway.wire.signatures import SignatureStore
from rules.model import KeySource, Route, Target
from rules.redact import looks_secret, redact

__all__ = ["PreviewRequest", "load_request", "preview_lines"]

DEFAULT_PATH = "/v1/messages?beta=true"
DEFAULT_HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "x-gateway-key", "cookie"})
# Any other header whose name says it carries a credential (x-auth-token, x-goog-api-key...).
_CREDENTIAL_NAME = re.compile(r"auth|cookie|token|secret|passw|credential|(?:^|[-_])(?:api[-_]?)?key$", re.IGNORECASE)
_LONG_STRING = 160  # longer strings are shortened in the diff: the structure is what changes
_NO_CREDENTIAL = Credential((), KeySource("client"), None)  # when none is available right now


@dataclass(frozen=True)
class PreviewRequest:
    """A client request to preview: path (with query), headers, body."""

    path: str
    body: RequestBody
    headers: dict[str, str] = field(default_factory=dict)


def load_request(data: bytes, model: str) -> PreviewRequest:
    """Read FILE's bytes; ValueError with the reason when it is neither form."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the request file is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("the request file must hold a JSON object: a request body, or {path, headers, body}")
    path, headers = DEFAULT_PATH, dict(DEFAULT_HEADERS)
    if isinstance(doc.get("body"), dict) and "messages" not in doc:  # a captured request
        path = str(doc.get("path") or DEFAULT_PATH)
        captured = doc.get("headers")
        if isinstance(captured, dict):
            skip = {"host", "content-length", "connection", "accept-encoding"}
            headers = {str(k).lower(): str(v) for k, v in captured.items() if str(k).lower() not in skip}
        doc = doc["body"]
    if not isinstance(doc.get("messages"), list):
        raise ValueError("the request file's body has no `messages` list: give a Messages API request body")
    if doc.get("model") != model:
        doc = {**doc, "model": model}
    try:
        body = parse_body(orjson.dumps(doc))
    except InvalidRequest as exc:
        raise ValueError(f"the request file's body is not a Messages request: {exc.message}") from None
    return PreviewRequest(path, body, headers)


def _shorten(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _LONG_STRING:
        return f"{value[:_LONG_STRING - 40]}...<{len(value)} chars>"
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    return value


def _json_lines(doc: Any) -> list[str]:
    return json.dumps(_shorten(doc), indent=2, ensure_ascii=False).splitlines()


def _secret(name: str, value: str, secret_names: set[str]) -> bool:
    """A credential by its name, by the provider's own extra headers, or by how the value looks."""
    lower = name.lower()
    return (lower in _SECRET_HEADERS or lower in secret_names or _CREDENTIAL_NAME.search(lower) is not None
            or looks_secret(value))


def _header_lines(headers: list[tuple[str, str]], secret_names: set[str]) -> list[str]:
    lines = []
    for name, value in headers:
        shown = redact(value) if _secret(name, value, secret_names) else value
        lines.append(f"{name.lower()}: {shown}")
    return sorted(lines)


def _diff(before: list[str], after: list[str], left: str, right: str, indent: str) -> list[str]:
    diff = list(difflib.unified_diff(before, after, left, right, n=2, lineterm=""))
    return [indent + line for line in diff] if diff else [indent + "(no change)"]


def _target_lines(
    request: PreviewRequest, target: Target, resolver: CredentialResolver, client_headers: Mapping[str, str]
) -> list[str]:
    provider = target.provider
    indent = "    "
    lines = [f"  POST {provider.base_url}{request.path}"]
    if request.path.split("?", 1)[0].endswith("/count_tokens"):
        policy = provider.count_tokens
        if policy.mode == "estimate":
            return lines + ["  count_tokens = \"estimate\": answered by the gateway, nothing is sent"]
        if policy.mode == "reject":
            return lines + ["  count_tokens = \"reject\": answered with 501, nothing is sent"]
        if policy.mode == "via":
            lines.append(f"  count_tokens goes via provider '{policy.via}' (its URL, key and policy), with the client's model")
    try:
        credential = resolver.resolve(provider, client_headers)
        sent_headers = upstream_headers(client_headers.items(), provider, credential)
    except AuthenticationFailed as exc:
        lines.append(f"  key: {exc.message} (a request now would get 401)")
        sent_headers = upstream_headers(client_headers.items(), provider, _NO_CREDENTIAL)
    extra = {name.lower() for name, _ in provider.headers}  # values may be tokens of their own
    lines.append("  headers:")
    lines += _diff(
        _header_lines(list(client_headers.items()), extra), _header_lines(sent_headers, extra), "client", provider.name, indent
    )
    result = rewrite(request.body, target, SignatureStore())
    if result.applied:
        size = len(orjson.dumps(result.doc))
        lines.append(
            f"  body: rewritten by {', '.join(result.applied)} "
            f"({len(request.body.raw)} -> {size} bytes, re-serialised once)"
        )
        lines += _diff(_json_lines(request.body.doc), _json_lines(result.doc), "client", provider.name, indent)
    else:
        lines.append(f"  body: the client's {len(request.body.raw)} bytes, unchanged")
    if provider.thinking == "foreign":
        lines.append(
            "  thinking = \"foreign\": the server removes blocks it saw another provider sign; "
            "this preview has no such memory and keeps them"
        )
    return lines


def preview_lines(route: Route, request: PreviewRequest, env: Mapping[str, str]) -> list[str]:
    """The preview of ``request`` leaving for each target of ``route``, as lines of text."""
    resolver = CredentialResolver(env)
    lines: list[str] = []
    for number, target in enumerate(route.to, start=1):
        model = target.upstream_model(request.body.model)
        lines += ["", f"request to target {number}: provider {target.provider.name}, model {model}"]
        lines += _target_lines(request, target, resolver, request.headers)
    return lines
