"""Send a request along its route: try the targets in order, stream the answer back.

For each target: its credential, its body (rewrites only when needed), its headers, one
upstream request. A target that fails before any byte reached the client (connect error,
timeout before the response head, a status in the route's ``fallback_on``, no credential)
hands over to the next target. Once the client has bytes, the answer is committed: a stream
that breaks later ends with an SSE ``error`` event, never a silent cut.

Bytes are relayed as they arrive (``aiter_raw`` -> ``response.send``); the stream observer
reads them only after they were sent. When the client goes away, Sanic cancels the handler
task and the ``finally`` blocks close the upstream response at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping

import aiohttp
import httpx
from sanic import Request
from sanic.response import HTTPResponse

from gateway.errors import (
    AuthenticationFailed,
    ClientError,
    NotSupported,
    Overloaded,
    UpstreamTimeout,
    UpstreamUnreachable,
    sse_error_event,
)
from gateway.proxy.count_tokens import (
    Answer,
    CountTokensCache,
    cache_key,
    estimate_answer,
    fetch,
    replay,
)
from gateway.upstream.client import Upstream
from gateway.upstream.credentials import Credential, CredentialResolver
from gateway.upstream.limits import Limits
from gateway.upstream.provider_health import ProviderHealth
from gateway.upstream.transport import read_body
from gateway.wire.headers import downstream_headers, upstream_headers
from gateway.wire.rewrite import RequestBody, body_for_target
from gateway.wire.signatures import SignatureStore
from gateway.wire.sse import StreamObserver, observe_message
from rules.model import Provider, Route, RuleSet, Target

# Bodies of upstream error answers we drop to fall back are read for the log, never more than this.
_ERROR_BODY_LIMIT = 64 * 1024


@dataclass(slots=True)
class Attempt:
    """One try of one target."""

    provider: str
    model: str
    outcome: str  # "ok", "status", "connect", "timeout", "read", "credential", "skipped", "policy"
    status: int | None = None
    detail: str = ""


@dataclass(slots=True)
class Exchange:
    """What happened to one client request, for the request log, metrics and tests."""

    request_id: str
    endpoint: str  # "messages" or "count_tokens"
    client: str = ""
    model: str = ""
    route: str | None = None
    stream: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    status: int = 0
    started: float = field(default_factory=time.perf_counter)
    ttfb: float | None = None  # seconds from arrival to the first byte sent to the client
    finished: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None  # set when the gateway answered with an error or ended a stream with one

    @property
    def used(self) -> Attempt | None:
        """The attempt whose answer the client got."""
        for attempt in reversed(self.attempts):
            if attempt.outcome in ("ok", "status"):
                return attempt
        return None


class _Failure(Exception):
    """An attempt that failed before the client saw a byte; the next target may take over."""

    def __init__(self, outcome: str, detail: str, provider: str, *, connecting: bool = False) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.provider = provider
        self.connecting = connecting  # failed before a connection existed: counts toward the circuit

    @property
    def error(self) -> ClientError:
        """What the client gets when no other target takes the request."""
        if self.outcome == "timeout":
            return UpstreamTimeout(f"provider '{self.provider}' timed out: {self.detail}")
        return UpstreamUnreachable(f"provider '{self.provider}' is unreachable: {self.detail}")


class _FellBack(Exception):
    """An upstream answered with a status in the route's fallback_on; the next target takes over."""

    def __init__(self, answer: tuple[int, bytes, dict[str, str]]) -> None:
        super().__init__(answer[0])
        self.answer = answer


def _network_failure(exc: Exception, provider: Provider) -> _Failure:
    """Name what went wrong talking to the upstream, in words a user can act on.

    The transport (gateway.upstream.transport) raises the httpx exception that says what happened,
    with aiohttp's error as the cause for the details (refused, DNS...).
    """
    cause = exc.__cause__
    where = provider.base_url
    name = provider.name
    if isinstance(exc, httpx.ConnectError):
        if isinstance(cause, aiohttp.ClientConnectorDNSError):
            reason = f"cannot resolve host {cause.host!r}"
        elif isinstance(cause, aiohttp.ClientConnectorError) and isinstance(cause.os_error, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(cause, aiohttp.ClientConnectorError) and cause.os_error is not None:
            reason = cause.os_error.strerror or str(cause.os_error)
        else:
            reason = str(exc)
        return _Failure("connect", f"cannot connect to {where}: {reason}", name, connecting=True)
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        detail = f"connecting to {where} timed out after {provider.connect_timeout_s:g} s"
        return _Failure("timeout", detail, name, connecting=True)
    if isinstance(exc, httpx.TimeoutException):
        return _Failure("timeout", f"{where} sent nothing for {provider.timeout_s:g} s", name)
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return _Failure("read", f"{where} closed the connection without answering", name)
    if isinstance(cause, aiohttp.ClientPayloadError):
        return _Failure("read", f"{where} broke off its answer ({cause})", name)
    return _Failure("read", f"{where}: {(cause or exc).__class__.__name__}: {cause or exc}", name)


class Proxy:
    """Forwards requests for one worker: shared upstream transport, credentials, signatures, health."""

    def __init__(
        self,
        upstream: Upstream,
        credentials: CredentialResolver,
        signatures: SignatureStore,
        health: ProviderHealth,
        limits: Limits | None = None,
    ) -> None:
        self.upstream = upstream
        self.credentials = credentials
        self.signatures = signatures
        self.health = health
        self.limits = limits if limits is not None else Limits()
        self.count_tokens = CountTokensCache()  # identical count_tokens calls: one upstream call
        self._timeouts: dict[tuple[float, float], dict[str, float | None]] = {}

    def _timeout(self, provider: Provider) -> dict[str, float | None]:
        key = (provider.timeout_s, provider.connect_timeout_s)
        timeout = self._timeouts.get(key)
        if timeout is None:
            # read: the longest silence allowed, before the head and between bytes.
            timeout = httpx.Timeout(
                connect=provider.connect_timeout_s,
                read=provider.timeout_s,
                write=provider.timeout_s,
                pool=provider.connect_timeout_s,
            ).as_dict()
            self._timeouts[key] = timeout
        return timeout

    async def forward(
        self,
        request: Request,
        route: Route,
        body: RequestBody,
        exchange: Exchange,
        path: str,
    ) -> HTTPResponse | None:
        """Answer ``request`` from the first target of ``route`` that takes it."""
        client_headers: Mapping[str, str] = request.headers
        upstream_error: tuple[int, bytes, dict[str, str]] | None = None
        gateway_errors: list[ClientError] = []
        targets = route.to
        last_index = len(targets) - 1
        for index, target in enumerate(targets):
            provider = target.provider
            model = target.upstream_model(body.model)
            if exchange.endpoint == "count_tokens":
                answered = await self._count_tokens_policy(request, target, body, exchange, path)
                if answered is not None:
                    return answered
            try:
                credential = self.credentials.resolve(provider, client_headers)
            except AuthenticationFailed as exc:
                exchange.attempts.append(Attempt(provider.name, model, "credential", detail=exc.message))
                gateway_errors.append(exc)
                continue
            skipped = self.health.skip(provider.name, last=index == last_index, credential=credential.fingerprint)
            if skipped is not None:
                exchange.attempts.append(Attempt(provider.name, model, "skipped", detail=skipped))
                continue
            limit = self.limits.for_provider(provider)
            if limit is not None:
                try:
                    await limit.acquire(provider.name)
                except Overloaded as exc:
                    exchange.attempts.append(Attempt(provider.name, model, "overloaded", detail=exc.message))
                    gateway_errors.append(exc)
                    continue
            try:
                result = await self._attempt(
                    request, route, body, target, credential, exchange, path, index < last_index
                )
            except _Failure as failure:
                gateway_errors.append(failure.error)
                continue
            except _FellBack as fell:
                upstream_error = fell.answer
                continue
            finally:
                if limit is not None:
                    limit.release()
            return result

        if upstream_error is not None:
            # The client gets the last upstream answer unchanged (status, body, retry-after...).
            status, data, headers = upstream_error
            exchange.status = status
            return HTTPResponse(data, status=status, headers=headers, content_type=None)
        raise _combined(gateway_errors, exchange)

    async def _attempt(
        self,
        request: Request,
        route: Route,
        body: RequestBody,
        target: Target,
        credential: Credential,
        exchange: Exchange,
        path: str,
        can_fall_back: bool,
    ) -> HTTPResponse | None:
        """One try of one target. Raises _Failure or _FellBack when the next target should take over."""
        provider = target.provider
        name = provider.name
        model = target.upstream_model(body.model)
        content = body_for_target(body, target, self.signatures)
        headers = upstream_headers(request.headers.items(), provider, credential)
        upstream = self.upstream.request(provider.base_url + path, headers, content, self._timeout(provider))
        try:
            if exchange.endpoint == "count_tokens":
                response = await self._count_once(upstream, provider.name, headers, content)
            else:
                response = await self.upstream.send(upstream)
        except httpx.HTTPError as exc:
            failure = _network_failure(exc, provider)
            if failure.connecting:
                self.health.on_connect_error(name)
            else:
                self.health.on_probe_abandoned(name)
            exchange.attempts.append(Attempt(name, model, failure.outcome, detail=failure.detail))
            raise failure from None
        except BaseException:
            self.health.on_probe_abandoned(name)  # the client left while we waited for the head
            raise
        status = response.status_code
        self.health.on_status(name, status, response.headers, credential.fingerprint)
        if status in route.fallback_on and can_fall_back:
            try:
                data = await _read_limited(response)
            except httpx.HTTPError:
                data = b""
            finally:
                await response.aclose()
            exchange.attempts.append(Attempt(name, model, "status", status))
            raise _FellBack((status, data, downstream_headers(response.headers.multi_items())))
        outcome = "ok" if status < 400 else "status"
        if _is_event_stream(response):
            exchange.attempts.append(Attempt(name, model, outcome, status))
            await self._stream(request, response, provider, exchange)
            return None
        # The whole answer is read before the client sees a byte: a failure here may still fall back.
        try:
            data = await read_body(response)
        except httpx.HTTPError as exc:
            failure = _network_failure(exc, provider)
            exchange.attempts.append(Attempt(name, model, failure.outcome, detail=failure.detail))
            raise failure from None
        finally:
            await response.aclose()
        exchange.attempts.append(Attempt(name, model, outcome, status))
        return self._whole(response, data, provider, exchange)

    async def _count_tokens_policy(
        self, request: Request, target: Target, body: RequestBody, exchange: Exchange, path: str
    ) -> HTTPResponse | None:
        """Answer count_tokens per the target provider's policy; None: forward it as usual."""
        policy = target.provider.count_tokens
        if policy.mode == "forward":
            return None
        provider = target.provider
        model = target.upstream_model(body.model)
        if policy.mode == "reject":
            raise NotSupported(
                f"count_tokens is not offered for model '{body.model}' by provider '{provider.name}' "
                f"(routes.toml: count_tokens = \"reject\"); clients such as Claude Code fall back "
                "to their own estimate"
            )
        if policy.mode == "estimate":
            key = cache_key("estimate", "", (), body.raw)
            answer = self.count_tokens.cached(key)
            if answer is None:
                answer = estimate_answer(body.doc)
                self.count_tokens.keep(key, answer)
            exchange.attempts.append(Attempt(provider.name, model, "ok", 200, detail="local estimate"))
            return self._answered(answer, exchange)
        return await self._count_via(request, policy.via or "", target, body, exchange, path)

    async def _count_via(
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
        credential = self.credentials.resolve(counter, request.headers)
        content = body_for_target(body, Target(counter), self.signatures)
        headers = upstream_headers(request.headers.items(), counter, credential)
        upstream = self.upstream.request(counter.base_url + path, headers, content, self._timeout(counter))
        try:
            response = await self._count_once(upstream, counter.name, headers, content)
            data = await read_body(response)
        except httpx.HTTPError as exc:
            failure = _network_failure(exc, counter)
            exchange.attempts.append(Attempt(counter.name, body.model, failure.outcome, detail=failure.detail))
            raise failure.error from None
        status = response.status_code
        exchange.attempts.append(Attempt(counter.name, body.model, "ok" if status < 400 else "status", status))
        return self._whole(response, data, counter, exchange)

    async def _count_once(self, upstream: httpx.Request, provider: str, headers: list[tuple[str, str]], content: bytes) -> httpx.Response:
        """Send a count_tokens request, sharing the answer with identical calls (in flight or recent)."""
        key = cache_key(provider, str(upstream.url), headers, content)
        answer = await self.count_tokens.get(key, lambda: fetch(self.upstream, upstream))
        return replay(answer, upstream)

    def _answered(self, answer: Answer, exchange: Exchange) -> HTTPResponse:
        exchange.status = answer.status
        exchange.ttfb = time.perf_counter() - exchange.started
        return HTTPResponse(answer.content, status=answer.status, headers=dict(answer.headers), content_type=None)

    def _whole(self, response: httpx.Response, data: bytes, provider: Provider, exchange: Exchange) -> HTTPResponse:
        status = response.status_code
        exchange.status = status
        exchange.ttfb = time.perf_counter() - exchange.started
        if status < 300 and exchange.endpoint == "messages":
            name = provider.name
            seen = observe_message(data, lambda sig: self.signatures.record(sig, name))
            exchange.input_tokens, exchange.output_tokens = seen.input_tokens, seen.output_tokens
        headers = downstream_headers(response.headers.multi_items())
        return HTTPResponse(data, status=status, headers=headers, content_type=None)

    async def _stream(self, request: Request, response: httpx.Response, provider: Provider, exchange: Exchange) -> None:
        name = provider.name
        record = self.signatures.record
        observer = StreamObserver(lambda sig: record(sig, name))
        exchange.status = response.status_code
        exchange.stream = True
        error: str | None = None
        try:
            out = await request.respond(
                status=response.status_code, headers=downstream_headers(response.headers.multi_items())
            )
            first = True
            try:
                async for chunk in response.aiter_raw():
                    await out.send(chunk)
                    if first:
                        exchange.ttfb = time.perf_counter() - exchange.started
                        first = False
                    observer.feed(chunk)
            except httpx.HTTPError as exc:
                error = _network_failure(exc, provider).detail
        finally:
            await response.aclose()
        observer.finish()
        exchange.input_tokens, exchange.output_tokens = observer.input_tokens, observer.output_tokens
        if error is None and response.status_code == 200 and not (observer.saw_message_stop or observer.saw_error):
            error = "the stream ended before message_stop"
        if error is not None:
            exchange.error = error
            if not observer.at_boundary:
                await out.send(b"\n\n")  # end the partial event so ours parses on its own
            await out.send(sse_error_event("api_error", f"provider '{name}' broke off the stream: {error}"))
        await out.eof()


def _is_event_stream(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


async def _read_limited(response: httpx.Response) -> bytes:
    data = bytearray()
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= _ERROR_BODY_LIMIT:
            break
    return bytes(data)


def _combined(errors: list[ClientError], exchange: Exchange) -> ClientError:
    """One error for a request no target could take, naming every target tried."""
    if len(exchange.attempts) == 1 and len(errors) == 1:
        return errors[0]
    parts = [f"{a.provider}: {a.detail or f'answered {a.status}'}" for a in exchange.attempts]
    message = "no provider could take the request: " + "; ".join(parts)
    if errors and all(isinstance(e, AuthenticationFailed) for e in errors):
        return AuthenticationFailed(message)
    last_network = next((e for e in reversed(errors) if not isinstance(e, AuthenticationFailed)), None)
    if isinstance(last_network, (UpstreamTimeout, Overloaded)):
        return type(last_network)(message)
    return UpstreamUnreachable(message)
