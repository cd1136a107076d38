"""A client's request body: its exact bytes, the model it names, and the parsed document when needed.

The model the gateway routes on must be the model the upstream acts on. JSON allows a key twice
(parsers keep the last, or the first, or refuse) and spells keys with escapes (``"mod\\u0065l"``
is ``"model"``), so a body whose head says one model and whose tail says another would be
routed by one and served by the other. The head is trusted only when no other key in the body
can be read as ``model`` with a value an upstream would take; otherwise the body is parsed, and
one that names ``model`` twice at the top level is refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from gateway.errors import InvalidRequest

__all__ = ["RequestBody", "parse_body"]


# Claude Code (and the SDKs) put "model" first: `{"model":"claude-haiku-5-5",...`. Reading it
# from the head spares parsing a 20-50 KB body that goes upstream unchanged anyway; the parse
# (about a tenth of the gateway's CPU under load) happens only when a rewrite needs the document.
_MODEL_FIRST = re.compile(rb'\s*\{\s*"model"\s*:\s*"([^"\\\x00-\x1f]{1,256})"\s*[,}]')
_TRUE_AFTER_KEY = re.compile(rb'\s*:\s*true')
# After another `"model"` in the body: a key (a colon follows) and, if so, whether its value is an
# object. Claude Code's bodies hold one: the `model` property of a tool's input schema.
_IS_KEY = re.compile(rb'\s*:')
_OBJECT_VALUE = re.compile(rb'\s*:\s*\{')
_MODEL = b'"model"'
# How a key can spell d, e, l, m or o with an escape (\u0064 to \u006f): without one, every key
# that reads "model" holds the bytes `"model"`.
_LETTER_ESCAPE = b"\\u006"
_MODEL_KEY = re.compile(rb'"model"\s*:')


class RequestBody:
    """A client request body: its exact bytes, its model, and the parsed JSON object when needed.

    ``doc`` is parsed on first use and shared by every target of a fallback chain: read-only
    by convention. A body whose head names the model is routed without a parse; if it is not
    valid JSON after all, the first rewrite that needs it answers 400, and a body that goes
    upstream unchanged gets the upstream's own 400.
    """

    __slots__ = ("raw", "model", "_doc")

    def __init__(self, raw: bytes, model: str, doc: dict[str, Any] | None = None) -> None:
        self.raw = raw
        self.model = model
        self._doc = doc

    @property
    def doc(self) -> dict[str, Any]:
        if self._doc is None:
            self._doc = _parse(self.raw)
        return self._doc

    @property
    def stream(self) -> bool:
        if self._doc is not None:
            return self._doc.get("stream") is True
        # For the request log only; "stream" comes last in Claude Code's bodies.
        at = self.raw.rfind(b'"stream"')
        return at >= 0 and _TRUE_AFTER_KEY.match(self.raw, at + 8) is not None


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("request body must be a JSON object")
    return doc


def _head_is_the_only_model(raw: bytes, start: int) -> bool:
    """True when nothing after ``start`` can be read as a second top-level model an upstream would take.

    A later ``"model"`` key is harmless only with an object value (a tool schema's property; at
    the top level no upstream takes an object for a model). Searched backwards: ``rfind`` skips
    on the needle's first byte, and a backslash or a quote is rarer than the letters: about
    8 us for each of the two searches over a 55 KB body, against 35-40 us for a parse.
    """
    if raw.rfind(_LETTER_ESCAPE, start) >= 0:
        return False
    at = raw.rfind(_MODEL, start)
    while at >= 0:
        if _IS_KEY.match(raw, at + 7) is not None and _OBJECT_VALUE.match(raw, at + 7) is None:
            return False
        at = raw.rfind(_MODEL, start, at + 6)  # +6: an overlapping `"model"model"` is still seen
    return True


def _pairs(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return pairs


def _top_level_models(raw: bytes) -> int:
    """How many top-level keys read "model", escapes decoded (a pure-C parse that builds no dicts)."""
    try:
        top = json.loads(raw, object_pairs_hook=_pairs)
    except ValueError:
        return 1  # orjson read it; a document only one of the two parsers takes names one model
    return sum(1 for key, _ in top if key == "model") if isinstance(top, list) else 0


def parse_body(raw: bytes) -> RequestBody:
    """Read a Messages API body; InvalidRequest (400) when it is not a JSON object with one model."""
    head = _MODEL_FIRST.match(raw)
    if head is not None and _head_is_the_only_model(raw, head.end()):
        return RequestBody(raw, head.group(1).decode("utf-8", "replace"))
    doc = _parse(raw)
    # A body that may name "model" twice (more than one such key anywhere, or an escaped key)
    # is checked exactly: its top-level keys, as a parser that keeps duplicates reads them.
    if _LETTER_ESCAPE in raw or len(_MODEL_KEY.findall(raw, 0)) > 1:
        if _top_level_models(raw) > 1:
            raise InvalidRequest(
                "model: the request body names `model` more than once at its top level; send it "
                "once (JSON parsers disagree on which one counts)"
            )
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: field required (a model name such as 'claude-sonnet-5-5')")
    return RequestBody(raw, model, doc)
