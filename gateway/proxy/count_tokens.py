"""/v1/messages/count_tokens: a local estimate, and one upstream call per burst of identical calls.

Claude Code's ``/context`` fires about 25 identical count_tokens calls within 60 ms, and repeats
them whenever the user looks again. ``CountTokensCache`` makes that one upstream call: callers
with the same key (provider, URL, credential, betas, version, body) wait for the call already
in flight, and a 200 answer is kept for ``ttl_s`` seconds. Keys are BLAKE2b digests, so no
credential or body is kept in memory, only the answers (a few bytes of JSON each).

``estimate_tokens`` counts without any upstream (``count_tokens = "estimate"``). No tokenizer
ships for Claude models, so it approximates one; the method and its measured error:

- Text (system, messages, tool_use inputs, tool results, tool definitions as JSON) is cut the
  way byte-pair tokenizers cut it: a word with its leading space is one piece, long words one
  piece per 10 letters, numbers one per 3 digits, punctuation one per 1-3 characters,
  newlines and indentation runs one each, every non-ASCII character one. On the English prose
  of Claude Code's system prompt this gives 4.2 characters per token, and 4.2 on its tool
  definitions; Anthropic's rule of thumb is about 3.5 for English, so long prose may read up
  to ~15% low.
- Fixed costs, from Anthropic's documentation: the tool-use system prompt that the API adds when
  ``tools`` is present (346 tokens for auto/none, 313 for any/tool on current models), about
  1,600 tokens for an image (the most an image costs after the API resizes it), 1,500 per PDF
  page. Thinking blocks of earlier assistant turns are not counted (the API ignores them).
- Framing: 3 tokens per request, 3 per message, 1 for a system prompt (fitted to the first
  example below).

Measured against the counts Anthropic's token-counting guide publishes for its examples:
"You are a scientist" / "Hello, Claude": 14 estimated, 14 real; the get_weather tool example:
424 estimated, 403 real (+5%); the extended-thinking example: 52 estimated, 88 real (-41%:
thinking adds a cost the documentation does not break down). Small requests are dominated
by fixed costs; Claude Code's requests (10-50 k tokens of system prompt, tools and history)
are dominated by the text term. Good enough for ``/context``, which shows proportions; the
response says it is an estimate (``x-gateway-estimate: true``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

import httpx
import orjson

from gateway.upstream.client import Upstream
from gateway.upstream.transport import read_body

__all__ = ["Answer", "CountTokensCache", "estimate_tokens", "text_tokens", "cache_key", "replay"]

TOOL_PROMPT_TOKENS = 346  # tool_choice auto or none
FORCED_TOOL_PROMPT_TOKENS = 313  # tool_choice any or tool
IMAGE_TOKENS = 1_600
PDF_PAGE_TOKENS = 1_500
REQUEST_TOKENS = 3
MESSAGE_TOKENS = 3
SYSTEM_TOKENS = 1

_PIECE = re.compile(
    r" ?[A-Za-z]{1,10}"  # a word with its leading space; long words every 10 letters
    r"| ?[0-9]{1,3}"  # numbers in groups of three digits
    r"|[^\x00-\x7f]"  # non-ASCII: CJK, accents, emoji are about one token each
    r"| ?[!-/:-@\[-`{-~]{1,3}"  # punctuation, up to three together ('",' '":' '{"' '...')
    r"|[ \t]*\n+"  # line breaks
    r"|[ \t]{2,}"  # indentation
)
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?!s)")


def text_tokens(text: str) -> int:
    """The estimated token count of one string."""
    return len(_PIECE.findall(text)) if text else 0


def _json_tokens(value: Any) -> int:
    return text_tokens(orjson.dumps(value).decode())


def _pdf_pages(data: str) -> int:
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return 1
    return max(1, len(_PDF_PAGE.findall(raw)))


def _block_tokens(block: Any, *, thinking_counts: bool) -> int:
    if isinstance(block, str):
        return text_tokens(block)
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind == "text":
        return text_tokens(str(block.get("text", "")))
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "document":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "text":
            return text_tokens(str(source.get("data", "")))
        if isinstance(source, dict) and source.get("media_type") == "application/pdf" and isinstance(source.get("data"), str):
            return PDF_PAGE_TOKENS * _pdf_pages(source["data"])
        return PDF_PAGE_TOKENS
    if kind == "tool_use":
        return text_tokens(str(block.get("name", ""))) + _json_tokens(block.get("input", {}))
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return sum(_block_tokens(b, thinking_counts=False) for b in content)
        return text_tokens(content) if isinstance(content, str) else 0
    if kind == "thinking":
        return text_tokens(str(block.get("thinking", ""))) if thinking_counts else 0
    if kind == "redacted_thinking":
        return 0
    # Anything else (server tool results, search results...): its JSON, minus the type.
    return _json_tokens({k: v for k, v in block.items() if k not in ("type", "cache_control")})


def _content_tokens(content: Any, *, thinking_counts: bool = False) -> int:
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, list):
        return sum(_block_tokens(b, thinking_counts=thinking_counts) for b in content)
    return 0


def estimate_tokens(doc: dict[str, Any]) -> int:
    """Estimated ``input_tokens`` of a Messages / count_tokens request body (see the module doc)."""
    total = REQUEST_TOKENS
    system = doc.get("system")
    if system:
        total += SYSTEM_TOKENS + _content_tokens(system)
    messages = doc.get("messages")
    if isinstance(messages, list):
        last = len(messages) - 1
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                continue
            # Only the thinking of a final (prefilled) assistant turn is input: earlier turns' is dropped.
            current = index == last and message.get("role") == "assistant"
            total += MESSAGE_TOKENS + _content_tokens(message.get("content"), thinking_counts=current)
    tools = doc.get("tools")
    if isinstance(tools, list) and tools:
        choice = doc.get("tool_choice")
        forced = isinstance(choice, dict) and choice.get("type") in ("any", "tool")
        total += FORCED_TOOL_PROMPT_TOKENS if forced else TOOL_PROMPT_TOKENS
        for tool in tools:
            if isinstance(tool, dict):
                total += _json_tokens({k: v for k, v in tool.items() if k not in ("cache_control", "defer_loading")})
    return total


# --- one upstream call per burst ------------------------------------------------------------

_KEY_HEADERS = frozenset({"x-api-key", "authorization", "anthropic-beta", "anthropic-version"})


def cache_key(provider: str, url: str, headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
    """The identity of a count_tokens call: same key, same answer.

    The credential is part of it (two users never share an answer), but only as a digest.
    """
    digest = hashlib.blake2b(digest_size=32)
    for part in (provider, url):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    for name, value in sorted((n.lower(), v) for n, v in headers if n.lower() in _KEY_HEADERS):
        digest.update(f"{name}:{value}".encode("utf-8", "surrogatepass") + b"\0")
    digest.update(body)
    return digest.digest()


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete upstream (or local) answer: status, headers, body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    content: bytes


class _Replay(httpx.AsyncByteStream):
    def __init__(self, content: bytes) -> None:
        self._content = content

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._content


def replay(answer: Answer, request: httpx.Request) -> httpx.Response:
    """A fresh, unread httpx.Response carrying ``answer``, for one of the callers that shared it."""
    return httpx.Response(answer.status, headers=list(answer.headers), stream=_Replay(answer.content), request=request)


class CountTokensCache:
    """Identical count_tokens calls answered once: in-flight sharing plus a short cache of 200s.

    One per worker. ``ttl_s`` is short on purpose: a count is a pure function of the body, but
    a provider may change its tokenizer, and the memory stays small (``max_entries``).
    """

    def __init__(self, ttl_s: float = 30.0, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._answers: OrderedDict[bytes, tuple[float, Answer]] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Task[Answer]] = {}
        self.upstream_calls = 0  # calls actually made, for tests and metrics

    def cached(self, key: bytes) -> Answer | None:
        """The answer kept for ``key``, if it has not expired."""
        entry = self._answers.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._answers[key]
            return None
        return entry[1]

    def keep(self, key: bytes, answer: Answer) -> None:
        """Keep a successful answer for ``ttl_s`` (other statuses are never kept)."""
        if answer.status != 200:
            return
        self._answers[key] = (self._clock() + self.ttl_s, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)

    async def get(self, key: bytes, produce: Callable[[], Awaitable[Answer]]) -> Answer:
        """The answer for ``key``: cached, or shared with the call in flight, or from ``produce()``.

        The call runs in its own task: a caller that goes away does not cancel it for the others.
        Its exceptions reach every caller waiting for it.
        """
        answer = self.cached(key)
        if answer is not None:
            return answer
        task = self._inflight.get(key)
        if task is None:
            self.upstream_calls += 1
            task = asyncio.ensure_future(produce())
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(task)

    def _settle(self, key: bytes, task: asyncio.Task[Answer]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if task.cancelled() or task.exception() is not None:  # retrieved: no "never retrieved" warning
            return
        self.keep(key, task.result())


async def fetch(upstream: Upstream, request: httpx.Request) -> Answer:
    """Send ``request`` and read the whole answer (count_tokens answers are a few bytes)."""
    response = await upstream.send(request)
    try:
        content = await read_body(response)
    finally:
        await response.aclose()
    return Answer(response.status_code, tuple(response.headers.multi_items()), content)


def estimate_answer(doc: dict[str, Any]) -> Answer:
    """The local answer for ``count_tokens = "estimate"``, marked as an estimate."""
    body = orjson.dumps({"input_tokens": estimate_tokens(doc)})
    return Answer(200, (("content-type", "application/json"), ("x-gateway-estimate", "true")), body)
