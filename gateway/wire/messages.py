"""Rewrites of the ``messages`` list: folding ``role: "system"`` turns into ``system``.

Claude Code puts a ``role: "system"`` turn inside ``messages`` (environment notes, reminders);
Anthropic accepts it, many Anthropic-compatible providers answer 400. ``system_turns = "merge"``
moves the text of those turns, in order, to the end of the top-level ``system``.

Like every rewrite here: a pure function over the parsed body that never mutates its input
(the parsed document is shared by every target of a fallback chain). It returns the new
document, or None when there was nothing to change. Only the containers on the path to a
change are copied; everything else is shared with the input.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Block", "Doc", "as_blocks", "merge_system_turns", "without_messages"]

Doc = dict[str, Any]
Block = dict[str, Any]


def as_blocks(content: Any) -> list[Any]:
    """Message or system content as a list of blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return content
    return []


def without_messages(messages: list[Any], removed: set[int]) -> list[Any]:
    """``messages`` without the indices in ``removed``.

    Two turns of the same role that become neighbours because a turn between them went are
    joined into one (their blocks in order), as the Messages API itself does with consecutive
    turns: providers that insist on alternating roles would otherwise reject the result.
    Turns that were already neighbours in the request are left as the client sent them.
    """
    out: list[Any] = []
    gap = False  # a removed turn lies between out[-1] and the next kept one
    for index, message in enumerate(messages):
        if index in removed:
            gap = bool(out)
            continue
        if (
            gap
            and isinstance(message, dict)
            and isinstance(out[-1], dict)
            and message.get("role") == out[-1].get("role")
        ):
            previous = out[-1]
            out[-1] = {**previous, "content": [*as_blocks(previous.get("content")), *as_blocks(message.get("content"))]}
        else:
            out.append(message)
        gap = False
    return out


def merge_system_turns(doc: Doc) -> Doc | None:
    """Fold every ``role: "system"`` turn of ``messages`` into the top-level ``system``, in order.

    ``system`` becomes a list of text blocks: its own blocks first (a string becomes one
    block), then each system turn's blocks, with their ``cache_control`` markers kept. Other
    keys of a system turn go with it (Claude Code puts a per-turn ``output_config`` there): a
    provider that rejects system turns has no use for them.
    """
    messages = doc.get("messages")
    if not isinstance(messages, list):
        return None
    turns = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "system"]
    if not turns:
        return None
    system = list(as_blocks(doc.get("system")))
    for index in turns:
        system.extend(as_blocks(messages[index].get("content")))
    out = {**doc, "messages": without_messages(messages, set(turns))}
    if system:
        out["system"] = system
    return out
