"""The request body each target receives: the client's bytes, or a rewrite of them.

The closed set of per-provider rewrites, applied in this order, each only when the target's
provider asks for it (routes.toml keys; defaults change nothing but ``thinking = "foreign"``):

=================  ==========================================================================
drop_fields        remove top-level fields (``context_management``, ``output_config``...)
thinking           ``foreign``: remove thinking blocks another provider issued; ``strip``: all
thinking_param     ``drop`` the request's ``thinking`` parameter, or only its ``budget_tokens``
system_turns       ``merge``: fold ``role: "system"`` turns of ``messages`` into ``system``
tool_choice        ``auto``: rewrite a forced tool_choice (any, tool) to auto
cache_control      ``strip_cache_control``: remove every ``cache_control`` marker
model              the target's ``model``, when it differs from the client's
=================  ==========================================================================

When nothing changes, the original bytes go upstream unchanged (not re-serialised: cheaper, and
byte-exact). Otherwise the body is rebuilt from the parsed document with orjson, once, after all
rewrites. The parsed document is shared by every target of a fallback chain and is never
mutated: each rewrite copies only the containers on the path to its change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.wire.body import RequestBody
from gateway.wire.fields import (
    auto_tool_choice,
    drop_fields,
    drop_thinking_budget,
    drop_thinking_param,
    strip_cache_control,
)
from gateway.wire.messages import merge_system_turns
from gateway.wire.signatures import SignatureStore
from gateway.wire.thinking import strip_foreign_thinking, strip_thinking
from rules.model import Target

__all__ = ["Rewrite", "body_for_target", "rewrite"]


@dataclass(frozen=True, slots=True)
class Rewrite:
    """What a target's policy made of a request: the document to send and what changed it.

    ``doc`` is the client's own document (the same object) when ``applied`` is empty.
    """

    doc: dict[str, Any]
    applied: tuple[str, ...]  # the rewrites that changed something, in the order they ran


def rewrite(body: RequestBody, target: Target, signatures: SignatureStore) -> Rewrite:
    """Apply ``target``'s wire policy and model rewrite to ``body``; nothing is mutated."""
    provider = target.provider
    doc = body.doc
    applied: list[str] = []

    def step(name: str, result: dict[str, Any] | None) -> None:
        nonlocal doc
        if result is not None:
            doc = result
            applied.append(name)

    if provider.drop_fields:
        step("drop_fields", drop_fields(doc, provider.drop_fields))
    if provider.thinking == "foreign":
        # The default, so it runs for nearly every request: see its docstring for the cost.
        step("thinking", strip_foreign_thinking(doc, provider.name, signatures))
    elif provider.thinking == "strip":
        step("thinking", strip_thinking(doc))
    if provider.thinking_param == "drop":
        step("thinking_param", drop_thinking_param(doc))
    elif provider.thinking_param == "no_budget":
        step("thinking_param", drop_thinking_budget(doc))
    if provider.system_turns == "merge":
        step("system_turns", merge_system_turns(doc))
    if provider.tool_choice == "auto":
        step("tool_choice", auto_tool_choice(doc))
    if provider.strip_cache_control and b"cache_control" in body.raw:
        step("cache_control", strip_cache_control(doc))
    if target.model is not None and target.model != body.model:
        step("model", {**doc, "model": target.model})
    return Rewrite(doc, tuple(applied))


def _may_change(body: RequestBody, target: Target, signatures: SignatureStore) -> bool:
    """False when no rewrite can apply, decided without parsing the body."""
    provider = target.provider
    return (
        provider.rewrites_body
        or provider.thinking == "strip"
        or (provider.thinking == "foreign" and not signatures.only_from(provider.name))
        or (target.model is not None and target.model != body.model)
    )


def body_for_target(body: RequestBody, target: Target, signatures: SignatureStore) -> bytes:
    """The bytes to send to ``target``: the client's own unless a policy or a model rewrite applies."""
    if not _may_change(body, target, signatures):
        return body.raw
    result = rewrite(body, target, signatures)
    if not result.applied:
        return body.raw
    return orjson.dumps(result.doc)
