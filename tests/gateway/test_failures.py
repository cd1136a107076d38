"""gateway.proxy.failures words what the transport raised: real failures on loopback sockets."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from fakes import BlackHole, closed_port
from fakes.raw import Answer, RawUpstream, UpstreamRequest
from gateway.proxy.failures import AttemptFailed, network_failure
from gateway.upstream.transport import HEADERS_EXTENSION, URL_EXTENSION, Transport, read_body
from rules.model import Provider


def _provider(url: str, read: float) -> Provider:
    return Provider("up", url, (), timeout_s=read)


async def _failure(url: str, read: float = 5.0) -> AttemptFailed:
    """Send one request through the worker's transport; what the failure is called."""
    transport = Transport(max_connections=4, keepalive_expiry_s=5)
    sent = [("content-type", "application/json"), ("content-length", "2")]
    request = httpx.Request(
        "POST", url + "/v1/messages", headers=sent, content=b"{}",
        extensions={"timeout": {"connect": 2.0, "read": read, "pool": 2.0}, HEADERS_EXTENSION: sent,
                    URL_EXTENSION: url + "/v1/messages"},
    )
    try:
        response = await transport.handle_async_request(request)
        await read_body(response)
    except httpx.HTTPError as exc:
        return network_failure(exc, _provider(url, read))
    finally:
        await transport.aclose()
    raise AssertionError("the request did not fail")


def _closing(head: bytes) -> Answer:
    """An answer of ``head`` (maybe nothing, maybe not HTTP), then the connection closed."""

    async def answer(request: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        await writer.drain()
        writer.close()

    return answer


async def test_a_refused_connection_says_connection_refused() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    failure = await _failure(url)
    assert failure.detail == f"cannot connect to {url}: connection refused"
    assert failure.connecting


async def test_silence_says_how_long() -> None:
    with BlackHole() as hole:
        failure = await _failure(hole.url, read=0.3)
    assert failure.detail == f"{hole.url} sent nothing for 0.3 s"


@pytest.mark.parametrize(
    ("head", "words"),
    [
        (b"", "closed the connection without answering"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial", "broke off its answer (it closed the connection)"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "sent an answer that is not valid HTTP/1.1"),
    ],
    ids=["no-answer", "cut-body", "not-http"],
)
async def test_a_broken_answer_is_named(head: bytes, words: str) -> None:
    with RawUpstream(_closing(head)) as upstream:
        failure = await _failure(upstream.url)
    assert failure.detail.startswith(f"{upstream.url} {words}"), failure.detail
    assert not failure.connecting
