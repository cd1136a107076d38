"""Rewrites of request parameters: drop_fields, tool_choice, thinking_param, strip_cache_control.

Each is a pure function over the parsed body: it never mutates its input, returns the new
document, or None when there was nothing to change (so the caller can send the client's own
bytes). Only the containers on the path to a change are copied.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "Doc",
    "auto_tool_choice",
    "drop_fields",
    "drop_thinking_budget",
    "drop_thinking_param",
    "strip_cache_control",
]

Doc = dict[str, Any]

# tool_choice types that force a tool call; "auto" and "none" leave the choice to the model.
_FORCED = ("any", "tool")


def drop_fields(doc: Doc, names: Iterable[str]) -> Doc | None:
    """Remove these top-level fields (``context_management``, ``output_config``...) when present."""
    present = [name for name in names if name in doc]
    if not present:
        return None
    return {k: v for k, v in doc.items() if k not in present}


def auto_tool_choice(doc: Doc) -> Doc | None:
    """Rewrite a forced ``tool_choice`` (``any``, ``tool``) to ``{"type": "auto"}``.

    ``disable_parallel_tool_use`` is kept: it means the same under auto. ``none`` is not
    forced and is left alone (turning it into auto would let the model call tools).
    """
    choice = doc.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") not in _FORCED:
        return None
    auto: dict[str, Any] = {"type": "auto"}
    if "disable_parallel_tool_use" in choice:
        auto["disable_parallel_tool_use"] = choice["disable_parallel_tool_use"]
    return {**doc, "tool_choice": auto}


def drop_thinking_param(doc: Doc) -> Doc | None:
    """Remove the request's ``thinking`` parameter (``thinking_param = "drop"``)."""
    if "thinking" not in doc:
        return None
    return {k: v for k, v in doc.items() if k != "thinking"}


def drop_thinking_budget(doc: Doc) -> Doc | None:
    """Remove only ``thinking.budget_tokens`` (``thinking_param = "no_budget"``)."""
    thinking = doc.get("thinking")
    if not isinstance(thinking, dict) or "budget_tokens" not in thinking:
        return None
    return {**doc, "thinking": {k: v for k, v in thinking.items() if k != "budget_tokens"}}


def _without_marker(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _strip_list(items: Any) -> list[Any] | None:
    """The list with every item's cache_control removed, or None when no item had one."""
    if not isinstance(items, list):
        return None
    out: list[Any] | None = None
    for index, item in enumerate(items):
        new = _without_marker(item)
        # tool_result blocks carry their own content list, whose blocks may be marked too.
        if isinstance(new, dict) and new.get("type") == "tool_result":
            inner = _strip_list(new.get("content"))
            if inner is not None:
                new = {**new, "content": inner}
        if new is not item:
            if out is None:
                out = list(items)
            out[index] = new
    return out


def strip_cache_control(doc: Doc) -> Doc | None:
    """Remove every ``cache_control``: top level, system blocks, tools, message blocks."""
    out: Doc | None = None
    if "cache_control" in doc:
        out = {k: v for k, v in doc.items() if k != "cache_control"}
    for key in ("system", "tools"):
        stripped = _strip_list(doc.get(key))
        if stripped is not None:
            out = out if out is not None else dict(doc)
            out[key] = stripped
    messages = doc.get("messages")
    if isinstance(messages, list):
        new_messages: list[Any] | None = None
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                continue
            content = _strip_list(message.get("content"))
            if content is not None:
                if new_messages is None:
                    new_messages = list(messages)
                new_messages[index] = {**message, "content": content}
        if new_messages is not None:
            out = out if out is not None else dict(doc)
            out["messages"] = new_messages
    return out
