"""The request checks a fake upstream can enforce, each as the real API words its 400/401.

Each check returns a `Rejection` (status, error type, message) or None.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .signing import Signer

OAUTH_BETA = "oauth-2025-04-20"

# Anthropic's message, verbatim: the rule that a tool-use loop under extended thinking keeps the
# assistant turn's thinking block in front.
_THINKING_FIRST = (
    "messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. "
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include "
    "thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult "
    "our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)


@dataclass(frozen=True)
class Rejection:
    """Why a fake upstream refused a request: an Anthropic-shaped error, or `body` as it is."""

    status: int
    error_type: str
    message: str
    body: bytes | None = None  # a provider's own shape (Z.AI's FastAPI 422), sent instead


def fastapi_422(loc: list[str | int], msg: str, value: Any, expected: str) -> Rejection:
    """Z.AI's answer to a body its validator refuses: HTTP 422, FastAPI's `detail` list."""
    item = {"type": "literal_error", "loc": loc, "msg": msg, "input": value, "ctx": {"expected": expected}}
    return Rejection(422, "", msg, json.dumps({"detail": [item]}).encode())


def _invalid(message: str) -> Rejection:
    return Rejection(400, "invalid_request_error", message)


def check_credentials(
    headers: Mapping[str, str],
    betas: Collection[str],
    *,
    api_key: str | None,
    bearer: str | None,
    oauth_beta_required: bool,
) -> Rejection | None:
    """Require the configured credential: `x-api-key: api_key` or `Authorization: Bearer bearer`.

    With neither configured, anything goes. With `oauth_beta_required`, a bearer token is only
    accepted alongside the oauth-2025-04-20 beta, as Anthropic does for OAuth tokens.
    """
    if api_key is None and bearer is None:
        return None
    sent_key = headers.get("x-api-key")
    sent_auth = headers.get("authorization")
    if api_key is not None and sent_key == api_key:
        return None
    if bearer is not None and sent_auth == f"Bearer {bearer}":
        if oauth_beta_required and OAUTH_BETA not in betas:
            return Rejection(401, "authentication_error", "OAuth authentication is currently not supported.")
        return None
    if sent_key is None and sent_auth is None:
        return Rejection(401, "authentication_error", "x-api-key header is required")
    if sent_key is None:
        return Rejection(401, "authentication_error", "Invalid bearer token")
    return Rejection(401, "authentication_error", "invalid x-api-key")


def _content_blocks(body: Mapping[str, Any]) -> Iterator[tuple[int, int, str, Mapping[str, Any]]]:
    """(message index, block index, role, block) for every block of every list-content message."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    for m_index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            continue
        for b_index, block in enumerate(message["content"]):
            if isinstance(block, dict):
                yield m_index, b_index, str(message.get("role")), block


def check_signatures(body: Mapping[str, Any], signer: Signer) -> Rejection | None:
    """Reject any thinking / redacted_thinking block this upstream did not issue."""
    for m_index, b_index, _role, block in _content_blocks(body):
        if block.get("type") == "thinking":
            if not signer.verify_thinking(str(block.get("thinking", "")), block.get("signature")):
                return _invalid(f"messages.{m_index}.content.{b_index}: Invalid `signature` in `thinking` block")
        elif block.get("type") == "redacted_thinking":
            if not signer.verify_redacted(block.get("data")):
                return _invalid(f"messages.{m_index}.content.{b_index}: Invalid `data` in `redacted_thinking` block")
    return None


def check_thinking_before_tool_use(body: Mapping[str, Any], thinking_types: Collection[str]) -> Rejection | None:
    """Anthropic's rule: with thinking on, the last assistant message, when it holds a
    `tool_use` (a tool-use loop in progress), must start with a thinking or redacted_thinking
    block.

    It applies when the request's `thinking.type` is in `thinking_types` (default
    {"enabled"}): under "adaptive" thinking the model may legitimately skip thinking, so a
    turn without a thinking block is not an error there (Claude Code sends exactly that).
    """
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in thinking_types:
        return None
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if not isinstance(content, list) or not content:
            return None
        has_tool_use = any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content)
        first = content[0].get("type") if isinstance(content[0], dict) else None
        if has_tool_use and first not in ("thinking", "redacted_thinking"):
            return _invalid(_THINKING_FIRST.format(index=index, found=first))
        return None
    return None


def check_third_party(
    body: Mapping[str, Any], betas: Collection[str], *, allowed_betas: Collection[str] | None
) -> Rejection | None:
    """What a strict third-party provider (modelled on Z.AI) refuses, with the reason.

    `role: "system"` inside messages (422 with the FastAPI body the GLM issue tracker shows),
    a tool_choice other than auto, and any anthropic-beta value outside `allowed_betas`
    (None: betas are not checked).
    """
    messages = body.get("messages")
    if isinstance(messages, list):
        for index, message in enumerate(messages):
            if isinstance(message, dict) and message.get("role") == "system":
                return fastapi_422(
                    ["body", "messages", index, "role"], "Input should be 'user' or 'assistant'",
                    "system", "'user' or 'assistant'",
                )
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and not (isinstance(tool_choice, dict) and tool_choice.get("type") == "auto"):
        shown = json.dumps(tool_choice, separators=(",", ":"))
        return _invalid(f'tool_choice: only {{"type":"auto"}} is supported by this provider, got {shown}')
    if allowed_betas is not None:
        for beta in betas:
            if beta not in allowed_betas:
                allowed = ", ".join(sorted(allowed_betas)) or "none"
                return _invalid(f"anthropic-beta: unsupported beta '{beta}' (this provider accepts: {allowed})")
    return None


def check_rejected_fields(body: Mapping[str, Any], rejected: Collection[str]) -> Rejection | None:
    """Refuse top-level body fields a provider does not know (e.g. context_management)."""
    for name in rejected:
        if name in body:
            return _invalid(f"{name}: Extra inputs are not permitted")
    return None
