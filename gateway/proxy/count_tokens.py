"""/v1/messages/count_tokens: the one entry point, ``CountTokens.answer``.

The request walks its route as a Messages call does (``Proxy.forward``), with two differences:

- each target's provider policy (``count_tokens`` in routes.toml) may answer first:
  ``estimate`` (a local count, ``gateway.wire.estimate``, marked ``x-gateway-estimate: true``),
  ``reject`` (501, as the original proxy did: clients fall back to their own estimate), or
  ``{ via = P }`` (ask provider P, with P's own credentials and wire policy); ``forward`` asks
  the target;
- identical calls share one upstream call. Claude Code's ``/context`` fires about 25 identical
  count_tokens calls within 60 ms, and repeats them whenever the user looks again.
  ``CountTokensCache`` makes that one upstream call: callers with the same key (provider, URL,
  credential, betas, version, body) wait for the call already in flight, and a 200 answer is
  kept for ``ttl_s`` seconds. Keys are BLAKE2b digests, so no credential or body is kept in
  memory, only the answers (a few bytes of JSON each).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from sanic import Request
from sanic.response import HTTPResponse

from gateway.errors import NotSupported, UpstreamUnreachable
from gateway.proxy.exchange import Attempt, Exchange
from gateway.proxy.failures import network_failure
from gateway.proxy.forward import Proxy
from gateway.proxy.refusals import refusal, respond
from gateway.proxy.relay import add_provenance, whole_answer
from gateway.upstream.client import Upstream
from gateway.upstream.transport import read_body
from gateway.wire.body import RequestBody
from gateway.wire.estimate import estimate_tokens
from rules.model import Provider, Route, RuleSet, Target

__all__ = ["Answer", "CountTokens", "CountTokensCache", "cache_key", "estimate_answer", "fetch", "replay"]

# A count_tokens answer is `{"input_tokens": N}`; anything far larger is not one (502, bounded memory).
_ANSWER_LIMIT = 1024 * 1024


class CountTokens:
    """count_tokens for one worker: the route's targets with their policies, identical calls shared."""

    def __init__(self, proxy: Proxy, cache: CountTokensCache | None = None) -> None:
        self.proxy = proxy
        self.cache = cache if cache is not None else CountTokensCache()

    async def answer(
        self, request: Request, route: Route, body: RequestBody, exchange: Exchange, path: str
    ) -> HTTPResponse | None:
        """Answer ``request`` along ``route``, as ``Proxy.forward`` answers a Messages call."""
        return await self.proxy.forward(request, route, body, exchange, path, self)

    async def answer_locally(
        self, request: Request, target: Target, body: RequestBody, exchange: Exchange, path: str
    ) -> HTTPResponse | None:
        """The target provider's policy; None: ask the target (``forward``)."""
        policy = target.provider.count_tokens
        if policy.mode == "forward":
            return None
        provider = target.provider
        model = target.upstream_model(body.model)
        if policy.mode == "reject":
            # Recorded, so the error answer (and the log, metrics) name the provider it came from.
            exchange.attempts.append(Attempt(provider.name, model, "policy", detail="count_tokens = reject"))
            raise NotSupported(
                f"count_tokens is not offered for model '{body.model}' by provider '{provider.name}' "
                f"(routes.toml: count_tokens = \"reject\"); clients such as Claude Code fall back "
                "to their own estimate"
            )
        if policy.mode == "estimate":
            key = cache_key("estimate", "", (), body.raw)
            answer = self.cache.cached(key)
            if answer is None:
                answer = estimate_answer(body.doc)
                self.cache.keep(key, answer)
            attempt = Attempt(provider.name, model, "ok", 200, detail="local estimate")
            exchange.attempts.append(attempt)
            exchange.status = answer.status
            exchange.ttfb = time.perf_counter() - exchange.started
            headers = add_provenance(dict(answer.headers), exchange.route, attempt)
            return HTTPResponse(answer.content, status=answer.status, headers=headers, content_type=None)
        return await self._via(request, policy.via or "", target, body, exchange, path)

    async def send(
        self, upstream: httpx.Request, provider: Provider, headers: Sequence[tuple[str, str]], content: bytes
    ) -> httpx.Response:
        """Send a count_tokens request, sharing the answer with identical calls (in flight or recent)."""
        key = cache_key(provider.name, str(upstream.url), headers, content)
        answer = await self.cache.get(key, lambda: fetch(self.proxy.upstream, upstream))
        return replay(answer, upstream)

    async def _via(
        self, request: Request, via: str, target: Target, body: RequestBody, exchange: Exchange, path: str
    ) -> HTTPResponse:
        """``count_tokens = { via = P }``: ask provider P, with P's own credentials and wire policy.

        P is sent the client's model name, not the target's rewrite: the rewrite names a model of
        the target provider (glm-4.7), which P does not know; the client's name is the Claude
        model the client wants counted. A client model P does not know gets P's own error,
        passed through (Claude Code then falls back to its own estimate).
        """
        ruleset: RuleSet = request.ctx.ruleset
        counter = ruleset.providers.get(via)
        if counter is None:  # only after a reload removed it: the loader checks the name
            raise UpstreamUnreachable(
                f"count_tokens of provider '{target.provider.name}' goes via provider '{via}', "
                "which the current config no longer has; fix count_tokens = { via = ... } in routes.toml"
            )
        proxy = self.proxy
        credential = proxy.credentials.resolve(counter, request.headers)
        upstream, headers, content = proxy.prepare(request, body, Target(counter), credential, path)
        try:
            response = await self.send(upstream, counter, headers, content)
            try:
                data = await read_body(response, _ANSWER_LIMIT)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            failure = network_failure(exc, counter)
            exchange.attempts.append(Attempt(counter.name, body.model, failure.outcome, detail=failure.detail))
            raise failure.error from None
        status = response.status_code
        if status >= 400:  # P's own error, in Anthropic's shape (gateway.proxy.refusals)
            answer, note = refusal(status, data, response.headers, counter, credential.fingerprint, proxy.health)
            exchange.attempts.append(Attempt(counter.name, body.model, "status", answer[0], detail=note))
            return respond(answer, exchange)
        exchange.attempts.append(Attempt(counter.name, body.model, "ok", status))
        return whole_answer(response, data, counter, exchange, proxy.signatures)


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
        content = await read_body(response, _ANSWER_LIMIT)
    finally:
        await response.aclose()
    return Answer(response.status_code, tuple(response.headers.multi_items()), content)


def estimate_answer(doc: dict[str, Any]) -> Answer:
    """The local answer for ``count_tokens = "estimate"``, marked as an estimate."""
    body = orjson.dumps({"input_tokens": estimate_tokens(doc)})
    return Answer(200, (("content-type", "application/json"), ("x-gateway-estimate", "true")), body)
