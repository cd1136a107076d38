"""Send a request along its route: try the targets in order, give the client the first answer.

For each target: its credential, admission (cooldowns, circuits, ``max_concurrent``), its body
(rewrites only when needed), its headers, one upstream request. A target that fails before any
byte reached the client (connect error, timeout before the response head, a status in the
route's ``fallback_on``, no credential) hands over to the next target (``gateway.proxy.failures``).
An error answer is first translated when the provider speaks another error shape
(``gateway.proxy.refusals``): the fallback decision sees the status the client would get.
The answer goes back through ``gateway.proxy.relay``.

``/v1/messages/count_tokens`` walks the same route with its own ``Endpoint`` (``gateway.proxy
.count_tokens``): a target may answer without being asked, and identical calls share one
upstream call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import httpx
from sanic import Request
from sanic.response import HTTPResponse

from gateway.errors import AuthenticationFailed, ClientError, Overloaded
from gateway.proxy.exchange import Attempt, Exchange
from gateway.proxy.failures import (
    AttemptFailed,
    FellBack,
    UpstreamAnswer,
    combined,
    network_failure,
)
from gateway.proxy.refusals import read_error, refusal, respond
from gateway.proxy.relay import is_event_stream, relay_stream, whole_answer
from gateway.upstream.client import Upstream
from gateway.upstream.credentials import Credential, CredentialResolver
from gateway.upstream.limits import Limits
from gateway.upstream.provider_health import ProviderHealth
from gateway.upstream.quota import QuotaBook, Spill
from gateway.upstream.transport import read_body
from gateway.wire.body import RequestBody
from gateway.wire.headers import upstream_headers
from gateway.wire.rewrite import body_for_target
from gateway.wire.signatures import SignatureStore
from rules.model import Provider, Route, Target

__all__ = ["Endpoint", "Proxy"]

# A non-streaming answer is read whole (to fall back on a broken read, and to count its usage);
# a Messages answer is at most ~1 MB (128k output tokens), so beyond this one is refused, 502.
_ANSWER_LIMIT = 16 * 1024 * 1024


class Endpoint(Protocol):
    """What an endpoint other than /v1/messages changes along the route."""

    async def answer_locally(
        self, request: Request, target: Target, body: RequestBody, exchange: Exchange, path: str
    ) -> HTTPResponse | None:
        """An answer for ``target`` without asking it (a local policy), or None to ask it."""

    async def send(
        self, upstream: httpx.Request, provider: Provider, headers: Sequence[tuple[str, str]], content: bytes
    ) -> httpx.Response:
        """Send the upstream request (the answer's body not read yet)."""


class Proxy:
    """Forwards requests for one worker: shared upstream transport, credentials, signatures, health."""

    def __init__(
        self,
        upstream: Upstream,
        credentials: CredentialResolver,
        signatures: SignatureStore,
        health: ProviderHealth,
        limits: Limits | None = None,
        quota: QuotaBook | None = None,
    ) -> None:
        self.upstream = upstream
        self.credentials = credentials
        self.signatures = signatures
        self.health = health
        self.limits = limits if limits is not None else Limits()
        self.quota = quota if quota is not None else QuotaBook()
        self._timeouts: dict[tuple[float, float], dict[str, float | None]] = {}

    def timeout(self, provider: Provider) -> dict[str, float | None]:
        """The upstream timeouts of ``provider``, built once per distinct setting."""
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

    def prepare(
        self, request: Request, body: RequestBody, target: Target, credential: Credential, path: str
    ) -> tuple[httpx.Request, list[tuple[str, str]], bytes]:
        """The upstream request for ``target``: its body (rewritten if its policy says so) and headers."""
        provider = target.provider
        content = body_for_target(body, target, self.signatures)
        headers = upstream_headers(request.headers.items(), provider, credential)
        upstream = self.upstream.request(provider.base_url + path, headers, content, self.timeout(provider))
        return upstream, headers, content

    async def forward(
        self,
        request: Request,
        route: Route,
        body: RequestBody,
        exchange: Exchange,
        path: str,
        endpoint: Endpoint | None = None,
    ) -> HTTPResponse | None:
        """Answer ``request`` from the first target of ``route`` that takes it."""
        client_headers: Mapping[str, str] = request.headers
        upstream_error: UpstreamAnswer | None = None
        gateway_errors: list[ClientError] = []
        targets = route.to
        last_index = len(targets) - 1
        for index, target in enumerate(targets):
            provider = target.provider
            model = target.upstream_model(body.model)
            if endpoint is not None:
                answered = await endpoint.answer_locally(request, target, body, exchange, path)
                if answered is not None:
                    return answered
            try:
                credential = self.credentials.resolve(provider, client_headers)
            except AuthenticationFailed as exc:
                exchange.attempts.append(Attempt(provider.name, model, "credential", detail=exc.message))
                gateway_errors.append(exc)
                continue
            spill: Spill | None = None
            if target.spill_at:
                spill = self.quota.spill(provider.name, credential, target.spill_at)
                if spill is not None and index < last_index:
                    exchange.attempts.append(Attempt(provider.name, model, "spill", detail=spill.detail))
                    exchange.spills += ((provider.name, spill.window),)
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
            tried = len(exchange.attempts)
            try:
                return await self._attempt(
                    request, route, body, target, credential, exchange, path, index < last_index, endpoint
                )
            except AttemptFailed as failure:
                gateway_errors.append(failure.error)
                continue
            except FellBack as fell:
                upstream_error = fell.answer
                continue
            finally:
                if limit is not None:
                    limit.release()
                if spill is not None:  # spill_at never refuses a request: the last target serves anyway
                    note = f"{spill.detail}, but the route's last target: asked anyway"
                    for attempt in exchange.attempts[tried:]:
                        attempt.detail = f"{note}; {attempt.detail}" if attempt.detail else note

        if upstream_error is not None:
            # The client gets the last upstream answer (status, body, retry-after...), translated
            # into Anthropic's shape if it came in another.
            return respond(upstream_error, exchange)
        raise combined(gateway_errors, exchange)

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
        endpoint: Endpoint | None,
    ) -> HTTPResponse | None:
        """One try of one target. Raises AttemptFailed or FellBack when the next target should take over."""
        provider = target.provider
        name = provider.name
        model = target.upstream_model(body.model)
        upstream, headers, content = self.prepare(request, body, target, credential, path)
        try:
            if endpoint is not None:
                response = await endpoint.send(upstream, provider, headers, content)
            else:
                response = await self.upstream.send(upstream)
        except httpx.HTTPError as exc:
            failure = network_failure(exc, provider)
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
        self.quota.observe(name, credential, response.headers)
        if status >= 400:  # only error answers pay for reading and translating
            try:
                data = await read_error(response)
            except httpx.HTTPError:
                data = b""  # the status alone still decides; the client gets it in Anthropic's shape
            answer, note = refusal(status, data, response.headers, provider, credential.fingerprint, self.health)
            exchange.attempts.append(Attempt(name, model, "status", answer[0], detail=note))
            if answer[0] in route.fallback_on and can_fall_back:
                raise FellBack(answer)
            return respond(answer, exchange)
        # Also relayed as it arrives: what the client asked as a stream, whatever its label says.
        if is_event_stream(response) or (status < 300 and body.stream):
            exchange.attempts.append(Attempt(name, model, "ok", status))
            await relay_stream(request, response, provider, exchange, self.signatures)
            return None
        # The whole answer is read before the client sees a byte: a failure here may still fall back.
        try:
            data = await read_body(response, _ANSWER_LIMIT)
        except httpx.HTTPError as exc:
            failure = network_failure(exc, provider)
            exchange.attempts.append(Attempt(name, model, failure.outcome, detail=failure.detail))
            raise failure from None
        finally:
            await response.aclose()
        exchange.attempts.append(Attempt(name, model, "ok", status))
        return whole_answer(response, data, provider, exchange, self.signatures)

