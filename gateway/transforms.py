"""The request body each target receives: the client's bytes, or a rewrite of them.

When no transform and no model rewrite apply, the original bytes go upstream unchanged (not
re-serialised: cheaper, and byte-exact for providers that hash or sign what they receive).
Otherwise the body is rebuilt from the parsed document, copying only what changes: the parsed
document is shared by every target of a fallback chain and is never mutated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import InvalidRequest
from gateway.signatures import SignatureStore
from rules.model import Target


@dataclass(frozen=True, slots=True)
class RequestBody:
    """A client request body: its exact bytes and the parsed JSON object (read-only by convention)."""

    raw: bytes
    doc: dict[str, Any]

    @property
    def model(self) -> str:
        return self.doc["model"]

    @property
    def stream(self) -> bool:
        return self.doc.get("stream") is True


def parse_body(raw: bytes) -> RequestBody:
    """Parse a Messages API body; InvalidRequest (400) when it is not a JSON object with a model."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: field required (a model name such as 'claude-sonnet-5-5')")
    return RequestBody(raw, doc)


def body_for_target(body: RequestBody, target: Target, signatures: SignatureStore) -> bytes:
    """The bytes to send to ``target``: unchanged unless a policy or a model rewrite applies."""
    doc = body.doc
    changed: dict[str, Any] = {}
    if target.model is not None and target.model != doc["model"]:
        changed["model"] = target.model
    if not changed:
        return body.raw
    return orjson.dumps({**doc, **changed})
