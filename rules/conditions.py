"""What a request says about itself, and the ``when`` conditions of a route that read it.

Claude Code tells a gateway what each model call is for when
``CLAUDE_CODE_GATEWAY_HINT_HEADERS=1`` is set in its environment: the header
``x-claude-code-request-class`` (the main conversation, a subagent, compaction, ...) and, on a
subagent's calls, ``x-claude-code-agent-type``. A subagent names the same model as the main
conversation, so only these facts can send it elsewhere::

    facts = RequestFacts.from_headers(request.headers, server_tools=server_tools_in(body_tools))
    Conditions(request_class=frozenset({"subagent"})).holds(facts)

``RequestFacts`` is built once per request; ``Conditions`` once per config. Neither does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.patterns import glob_regex

__all__ = [
    "AGENT_TYPE_HEADER",
    "REQUEST_CLASSES",
    "REQUEST_CLASS_HEADER",
    "Conditions",
    "RequestFacts",
    "server_tools_in",
]

REQUEST_CLASS_HEADER = "x-claude-code-request-class"
AGENT_TYPE_HEADER = "x-claude-code-agent-type"

# The values Claude Code 2.1.332 sends (its own list; tests/fakes/captured has captures), then "unknown": the header is absent,
# or holds a value this list does not know (a newer Claude Code may add classes).
REQUEST_CLASSES: tuple[str, ...] = (
    "main",
    "subagent",
    "workflow",
    "compaction",
    "auxiliary",
    "side_reply",
    "unknown",
)
_KNOWN_CLASSES = frozenset(REQUEST_CLASSES)


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What one request says about itself, normalised; ``RequestFacts()`` is "no hint headers".

    ``request_class`` is one of ``REQUEST_CLASSES``; ``agent_type`` the subagent's type as sent
    (stripped; None when absent or empty); ``server_tools`` whether the body's ``tools`` hold an
    Anthropic server tool (see ``server_tools_in``).
    """

    request_class: str = "unknown"
    agent_type: str | None = None
    server_tools: bool = False

    def __post_init__(self) -> None:
        # A typo here would silently match no route's request_class: fail loudly instead.
        if self.request_class not in _KNOWN_CLASSES:
            raise ValueError(
                f"request_class {self.request_class!r} is not one of {', '.join(REQUEST_CLASSES)} "
                "(use RequestFacts.from_headers to normalise a header value)"
            )

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], *, server_tools: bool = False) -> RequestFacts:
        """The facts of a request from its headers (looked up by lower-case name, as Sanic's do).

        The request class is stripped and lower-cased; a value Claude Code does not document
        (or no header) is ``"unknown"``. ``server_tools`` is the caller's to work out, from the
        body, and only when ``RuleSet.uses_server_tools`` says a route asks.
        """
        raw = headers.get(REQUEST_CLASS_HEADER)
        request_class = "unknown"
        if raw is not None:
            value = raw.strip().lower()
            if value in _KNOWN_CLASSES:
                request_class = value
        agent = headers.get(AGENT_TYPE_HEADER)
        if agent is not None:
            agent = agent.strip() or None
        return cls(request_class, agent, server_tools)


def server_tools_in(tools: Any) -> bool:
    """True when a request body's ``tools`` list holds an Anthropic server tool.

    A server tool is one with a ``type`` other than ``"custom"`` (``web_search_20250305``,
    ``code_execution_...``); a client tool has no ``type`` or ``type = "custom"``. Anything
    that is not a list of tables holds none.
    """
    if not isinstance(tools, list):
        return False
    for tool in tools:
        if isinstance(tool, dict):
            kind = tool.get("type")
            if kind is not None and kind != "custom":
                return True
    return False


@dataclass(frozen=True, slots=True)
class Conditions:
    """A route's ``when``: every condition given (not None) must hold for the route to apply.

    ``request_class``: the classes allowed. ``agent_type``: globs over the agent type,
    case-insensitive like model patterns; a request without one matches none. ``server_tools``:
    whether the request must (true) or must not (false) carry a server tool.
    """

    request_class: frozenset[str] | None = None
    agent_type: tuple[str, ...] | None = None
    server_tools: bool | None = None
    # The agent_type globs as one regex, compiled on first use: most configs never ask.
    _agent_regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.request_class is None and self.agent_type is None and self.server_tools is None:
            raise ValueError("Conditions need at least one condition (use None for no `when`)")
        if self.request_class is not None and not self.request_class <= _KNOWN_CLASSES:
            unknown = ", ".join(sorted(self.request_class - _KNOWN_CLASSES))
            raise ValueError(f"unknown request class {unknown} (known: {', '.join(REQUEST_CLASSES)})")
        if self.request_class is not None and not self.request_class:
            raise ValueError("request_class needs at least one class")
        if self.agent_type is not None and not self.agent_type:
            raise ValueError("agent_type needs at least one glob")

    def holds(self, facts: RequestFacts) -> bool:
        """True when ``facts`` satisfy every condition given."""
        if self.request_class is not None and facts.request_class not in self.request_class:
            return False
        if self.server_tools is not None and facts.server_tools != self.server_tools:
            return False
        if self.agent_type is not None:
            return facts.agent_type is not None and self.agent_matches(facts.agent_type)
        return True

    def holds_apart_from_agent(self, request_class: str, server_tools: bool) -> bool:
        """``holds`` for the request class and server tools only, the agent type left aside."""
        if self.request_class is not None and request_class not in self.request_class:
            return False
        return self.server_tools is None or server_tools == self.server_tools

    def agent_matches(self, agent_type: str) -> bool:
        """True when one of the agent_type globs matches ``agent_type`` (case-insensitive)."""
        if self.agent_type is None:
            return True
        regex = self._agent_regex
        if regex is None:
            source = "|".join(f"(?:{glob_regex(g)})" for g in self.agent_type)
            regex = re.compile(source, re.DOTALL)
            object.__setattr__(self, "_agent_regex", regex)
        return regex.fullmatch(agent_type.lower()) is not None

    def describe(self) -> str:
        """The conditions in words, for ``gateway explain``: ``request_class subagent or compaction``."""
        parts: list[str] = []
        if self.request_class is not None:
            classes = [c for c in REQUEST_CLASSES if c in self.request_class]
            parts.append("request_class " + " or ".join(classes))
        if self.agent_type is not None:
            parts.append("agent_type " + " or ".join(f"'{g}'" for g in self.agent_type))
        if self.server_tools is not None:
            parts.append("server_tools " + ("true" if self.server_tools else "false"))
        return ", ".join(parts)
