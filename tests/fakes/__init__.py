"""Test doubles for the gateway's end-to-end tests: fake upstreams, sockets, the gateway in process.

Import as `from fakes import FakeUpstream, Reply, Error` (tests/conftest.py puts tests/ on
sys.path). Public names are re-exported here; the modules hold the details.
"""

from __future__ import annotations

from .behaviours import (
    Behaviour,
    Choose,
    Drop,
    Error,
    Handler,
    Hang,
    Raw,
    RedactedThinking,
    Reply,
    Text,
    Thinking,
    ToolUse,
    thinking_reply,
    tool_use_reply,
)
from .inprocess import InProcessGateway, start_inprocess_gateway
from .records import ConnectionRecord, RecordedRequest
from .signing import Signer
from .sockets import BlackHole, closed_port, free_port
from .upstream import COUNT_TOKENS, MESSAGES, MODELS, FakeUpstream
from .wire import parse_sse, unified_headers

__all__ = [
    "COUNT_TOKENS",
    "MESSAGES",
    "MODELS",
    "Behaviour",
    "BlackHole",
    "Choose",
    "ConnectionRecord",
    "Drop",
    "Error",
    "FakeUpstream",
    "Handler",
    "Hang",
    "InProcessGateway",
    "Raw",
    "RecordedRequest",
    "RedactedThinking",
    "Reply",
    "Signer",
    "Text",
    "Thinking",
    "ToolUse",
    "closed_port",
    "free_port",
    "parse_sse",
    "start_inprocess_gateway",
    "thinking_reply",
    "tool_use_reply",
    "unified_headers",
]
