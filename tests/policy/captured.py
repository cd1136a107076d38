"""The captured Claude Code requests (tests/fakes/captured).

`request_bytes(name)` is the body as Claude Code's JSON.stringify writes it (compact, UTF-8);
`inflated_bytes(name)` puts back the length of the strings the capture shortened
("...<trimmed 9288 of 9588 chars>"), so benchmarks see the real ~52 KB bodies.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_CANDIDATES = (_HERE.parent / "fakes" / "captured", _HERE.parents[2] / "shared" / "fixtures" / "claude-code")
CAPTURED = next((path for path in _CANDIDATES if path.is_dir()), _CANDIDATES[0])

MESSAGE_REQUESTS = (
    "cc_print_haiku_stream.json",
    "cc_print_custom_model_glm.json",
    "cc_print_sonnet_tool_result_turn2.json",
    "cc_interactive_sonnet_stream.json",
)
COUNT_TOKENS_REQUEST = "cc_interactive_count_tokens.json"
ALL_BODIES = (*MESSAGE_REQUESTS, COUNT_TOKENS_REQUEST)

_TRIMMED = re.compile(r"\.\.\.<trimmed (\d+) of \d+ chars>")
_FILLER = "The quick brown fox jumps over the lazy dog while the build runs its tests. "


def record(name: str) -> dict[str, Any]:
    """The whole capture: method, path, headers, body_summary, body."""
    data: dict[str, Any] = json.loads((CAPTURED / name).read_text())
    return data


def request_body(name: str) -> dict[str, Any]:
    body: dict[str, Any] = record(name)["body"]
    return body


def encode(doc: Any) -> bytes:
    """JSON as Claude Code sends it: no spaces, non-ASCII as UTF-8."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def request_bytes(name: str) -> bytes:
    return encode(request_body(name))


def _inflate(value: Any) -> Any:
    if isinstance(value, str):
        return _TRIMMED.sub(lambda m: (_FILLER * (int(m.group(1)) // len(_FILLER) + 1))[: int(m.group(1))], value)
    if isinstance(value, list):
        return [_inflate(v) for v in value]
    if isinstance(value, dict):
        return {k: _inflate(v) for k, v in value.items()}
    return value


def inflated_bytes(name: str) -> bytes:
    """The body with every shortened string grown back to its captured length."""
    return encode(_inflate(request_body(name)))


def client_headers(name: str) -> dict[str, str]:
    """The captured request headers, minus the transport ones an HTTP client sets itself."""
    skip = {"host", "content-length", "connection", "accept-encoding"}
    return {k: v for k, v in record(name)["headers"].items() if k.lower() not in skip}
