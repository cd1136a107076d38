"""Foreign error answers, translated at the boundary into Anthropic's shape.

Clients parse ``{"type":"error","error":{"type":T,"message":M}}``, and Claude Code reads M's
wording to recover by itself (it drops a system turn or a thinking field a provider refused,
and retries). A provider that answers in another shape is translated here, its wording kept in
the message with the provider's name after it::

    422 {"detail":[{"loc":["body","messages",1,"role"],"msg":"Input should be 'user' or 'assistant'"}]}
    ->  400 invalid_request_error "messages.1.role: Input should be 'user' or 'assistant' (provider zai)"

    429 {"error":{"code":"1308","message":"Usage limit reached for 5 hour. Your limit will reset at ..."}}
    ->  429 rate_limit_error "Usage limit reached ... (provider zai, code 1308)", retry-after: 3600

An Anthropic-shaped error (a word as its type) is not touched: ``translate`` returns None and
the answer goes through byte for byte, headers and all. Pure: bytes in, bytes out; what an
answer means for admission (``Translation.cool_until``, ``Translation.unusable``) is applied by
``gateway.proxy``. Only error answers (status >= 400) come here: the success path never pays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import orjson

from gateway.errors import error_body
from gateway.upstream.provider_health import MAX_COOLDOWN_S
from rules.model import Provider
from rules.presets import preset_for_url

__all__ = [
    "EXCERPT_CHARS",
    "STATUS_TYPES",
    "Translation",
    "ZAI_TIMEZONE",
    "dialect",
    "error_type",
    "translate",
    "zai_reset",
]

# Anthropic's error type for each status it uses (its errors documentation; docs/providers.md).
STATUS_TYPES: Mapping[int, str] = MappingProxyType({
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
})

# The message's share of a body that is not an error we know: one line, never a whole page.
EXCERPT_CHARS = 200
# A provider's own wording is kept whole up to this; longer text is cut (a body is at most 64 KiB).
_WORDING_CHARS = 2000

# Z.AI names reset times in China Standard Time, without saying so (docs/providers.md).
ZAI_TIMEZONE = timezone(timedelta(hours=8))
_ZAI_PRESETS = frozenset({"zai", "zai-china"})
# Z.AI's business codes (docs/providers.md): concurrency and frequency limits; the daily and
# 5-hour plan limits, whose message names the reset time; arrears and an expired plan.
_ZAI_RATE = frozenset({"1302", "1303"})
_ZAI_PLAN = frozenset({"1304", "1308"})
_ZAI_BILLING = frozenset({"1113", "1309"})
_RESET_AT = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?")
_TAG = re.compile(rb"<[^>]*>")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_NOT_JSON = object()


@dataclass(frozen=True, slots=True)
class Translation:
    """The client's answer for a foreign error, and what it means for the credential that got it.

    ``cool_until``: epoch seconds until which asking again is pointless (a plan limit's reset);
    ``unusable``: the credential cannot serve until a person acts (arrears, an expired plan);
    ``reason``: one line for the request log and /health (``Z.AI code 1308: Usage limit ...``).
    """

    status: int
    body: bytes
    reason: str
    headers: Mapping[str, str] = field(default_factory=dict)  # set on the client's answer
    cool_until: float | None = None
    unusable: bool = False


def error_type(status: int) -> str:
    """Anthropic's error type for ``status``: 429 -> rate_limit_error; other 4xx invalid_request_error."""
    known = STATUS_TYPES.get(status)
    if known is not None:
        return known
    return "invalid_request_error" if status < 500 else "api_error"


def dialect(provider: Provider) -> str | None:
    """``"zai"`` for a provider that speaks Z.AI's error dialect (by its preset, or its base
    URL's host), else None. Called on error answers only."""
    if provider.preset in _ZAI_PRESETS or preset_for_url(provider.base_url) in _ZAI_PRESETS:
        return "zai"
    return None


def zai_reset(message: str, now: float) -> float | None:
    """The reset moment a Z.AI message names, as epoch seconds; None if it names none ahead.

    ``"... Your limit will reset at 2026-03-01 19:00:00"`` is 19:00 in UTC+8 (11:00 UTC).
    """
    found = _RESET_AT.search(message)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(part or 0) for part in found.groups())
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=ZAI_TIMEZONE).timestamp()
    except ValueError:
        return None
    return moment if moment > now else None


def translate(status: int, body: bytes, *, provider: str, dialect: str | None, now: float) -> Translation | None:
    """The client's answer for ``provider``'s error answer, or None to pass it on unchanged.

    ``dialect``: ``"zai"`` to read Z.AI's business codes (``dialect(provider)``); ``now``:
    epoch seconds, for the retry-after of a plan limit.
    """
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = _NOT_JSON
    if isinstance(doc, dict):
        error = doc.get("error")
        if doc.get("type") == "error" and isinstance(error, dict):
            kind = error.get("type")
            if isinstance(kind, str) and kind and not kind.strip().isdigit():
                return None  # Anthropic's own shape: byte for byte
            return _coded(status, kind, error.get("message"), provider, dialect, now)
        if isinstance(error, dict):
            return _coded(status, error.get("code"), error.get("message"), provider, dialect, now)
        if "detail" in doc:
            return _plain(status, _detail_wording(doc["detail"]), provider, "a FastAPI detail body")
        if isinstance(error, str) and error.strip():
            return _plain(status, error, provider, "an error string")
        if isinstance(doc.get("message"), str) and doc["message"].strip():
            return _plain(status, doc["message"], provider, "a message body")
    excerpt = _excerpt(body) or f"HTTP {status} with an empty body"
    return _plain(status, excerpt, provider, "not JSON" if doc is _NOT_JSON else "an unknown JSON shape")


def _client_status(status: int) -> int:
    # Anthropic never answers 422 (a FastAPI validation error): its invalid requests are 400,
    # and that is what Claude Code recovers from.
    return 400 if status == 422 else status


def _message(wording: str, provider: str, code: str | None = None) -> str:
    wording = " ".join(wording.split()) if "\n" in wording or "\r" in wording else wording.strip()
    if len(wording) > _WORDING_CHARS:
        wording = wording[: _WORDING_CHARS - 3] + "..."
    said_by = f"provider {provider}, code {code}" if code else f"provider {provider}"
    return f"{wording} ({said_by})"


def _plain(status: int, wording: str, provider: str, shape: str) -> Translation:
    client = _client_status(status)
    body = error_body(error_type(client), _message(wording, provider))
    return Translation(client, body, f"translated {status} ({shape}) to {client}")


def _coded(
    status: int, code: object, message: object, provider: str, dialect: str | None, now: float
) -> Translation:
    """``{"error":{"code":C,"message":M}}`` and ``{"type":"error","error":{"type":"<digits>",...}}``."""
    code_text = str(code).strip() if isinstance(code, (str, int)) and not isinstance(code, bool) else ""
    wording = message if isinstance(message, str) and message.strip() else f"error code {code_text or 'unknown'}"
    client = _client_status(status)
    cool_until: float | None = None
    unusable = False
    headers: dict[str, str] = {}
    if dialect == "zai" and code_text:
        if code_text in _ZAI_RATE:
            client = 429
        elif code_text in _ZAI_PLAN:
            client = 429
            cool_until = zai_reset(wording, now)
            if cool_until is not None:
                cool_until = min(cool_until, now + MAX_COOLDOWN_S)
                headers["retry-after"] = str(max(1, math.ceil(cool_until - now)))
        elif code_text in _ZAI_BILLING:
            client = 402
            unusable = True
    message_text = _message(wording, provider, code_text or None)
    if dialect == "zai" and code_text:
        reason = f"Z.AI code {code_text}: {_short(wording)}"
    else:
        reason = f"translated {status} (code {code_text or 'none'}) to {client}"
    return Translation(client, error_body(error_type(client), message_text), reason, headers, cool_until, unusable)


def _detail_wording(detail: object) -> str:
    """FastAPI's ``detail``: a list of ``{loc, msg}`` (validation errors) or a string."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts: list[str] = []
        for item in detail[:10]:
            if isinstance(item, dict) and isinstance(item.get("msg"), str):
                loc = item.get("loc")
                path = list(loc) if isinstance(loc, list) else []
                if path and path[0] == "body":
                    path = path[1:]  # FastAPI's prefix; Anthropic's paths start at the field
                where = ".".join(str(p) for p in path)
                parts.append(f"{where}: {item['msg']}" if where else item["msg"])
            else:
                parts.append(_compact(item))
        if parts:
            return "; ".join(parts)
    return _compact(detail)


def _short(text: str) -> str:
    """One line of at most EXCERPT_CHARS characters."""
    line = " ".join(text.split())
    return line if len(line) <= EXCERPT_CHARS else line[: EXCERPT_CHARS - 3] + "..."


def _compact(value: object) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = str(value)
    return _short(text)


def _excerpt(body: bytes) -> str:
    """One short line from a body that is not an error we know: an HTML page's title, or text."""
    head = body[: 8 * EXCERPT_CHARS]
    title = _TITLE.search(head)
    if title is not None and title.group(1).strip():
        head = title.group(1)
    elif head.lstrip()[:1] == b"<":
        head = _TAG.sub(b" ", head)
    return _short(head.decode("utf-8", "replace"))
