"""Answers the gateway cannot trust to be small or well labelled, end to end on raw sockets.

- a non-streaming answer is read whole with a cap: 100 MB of JSON is a clear 502, and the
  gateway's peak memory (VmHWM) stays far below what reading it whole would take;
- a stream the upstream labels as JSON reaches the client as it comes, not at its end;
- an upstream that gzips although the gateway asked for identity: the bytes reach the client as
  sent, with their content-encoding, and nothing of the gateway's is mixed into them.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fakes.config import routes_toml
from fakes.gateway import GatewayProcess, start_gateway
from fakes.raw import RawUpstream, UpstreamRequest, read_reply

Answer = Callable[[UpstreamRequest, asyncio.StreamWriter], "asyncio.Future[None] | object"]
MB = 1024 * 1024


def post(port: int, *, stream: bool) -> socket.socket:
    body = json.dumps({"model": "m", "max_tokens": 8, "stream": stream,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nx-api-key: sk-client\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return sock


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., tuple[RawUpstream, GatewayProcess]]]:
    started: list[tuple[RawUpstream, GatewayProcess]] = []

    def start(answer: object) -> tuple[RawUpstream, GatewayProcess]:
        upstream = RawUpstream(answer).start()  # type: ignore[arg-type]
        config = routes_toml(providers={"up": {"base_url": upstream.url, "key": {"client": True}}},
                             routes=[{"match": "*", "to": "up"}])
        gateway = start_gateway(config, workdir=tmp_path / f"gw{len(started)}")
        started.append((upstream, gateway))
        return upstream, gateway

    yield start
    for upstream, gateway in reversed(started):
        gateway.stop()
        upstream.stop()


def memory_kb(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def huge_json(declare_length: bool) -> object:
    async def answer(request: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        size = 100 * MB
        length = b"content-length: %d\r\n" % size if declare_length else b"transfer-encoding: chunked\r\n"
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + length + b"\r\n")
        piece = b'{"pad":"' + b"x" * (MB - 10) + b'"}'
        for _ in range(100):
            writer.write(piece if declare_length else b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()  # ConnectionError once the gateway hung up: the fake stops there
        writer.write(b"" if declare_length else b"0\r\n\r\n")

    return answer


@pytest.mark.parametrize("declare_length", [False, True], ids=["chunked", "content-length"])
def test_a_100_mb_json_answer_is_a_502_in_bounded_memory(serve: Callable[..., tuple[RawUpstream, GatewayProcess]],
                                                         declare_length: bool) -> None:
    _, gateway = serve(huge_json(declare_length))
    pid = gateway.proc.pid
    before = memory_kb(pid, "VmRSS")
    with post(gateway.port, stream=False) as sock:
        reply = read_reply(sock, timeout=60)
    assert reply.status == 502, reply.body[:300]
    error = reply.json["error"]
    assert error["type"] == "api_error" and "answered too much" in error["message"]
    assert "a non-streaming answer is read whole, up to 16 MiB" in error["message"]
    grown_mb = (memory_kb(pid, "VmHWM") - before) / 1024
    assert grown_mb < 64, f"peak memory grew by {grown_mb:.0f} MB (reading it whole: ~250 MB)"
    gateway.wait_for_log("status=502")  # the request log line comes after the answer
    assert "Traceback" not in gateway.logs()


def test_a_stream_labelled_as_json_arrives_as_it_comes(serve: Callable[..., tuple[RawUpstream, GatewayProcess]]) -> None:
    release = threading.Event()
    start = b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
    end = (b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}\n\n'
           b'event: message_stop\ndata: {"type":"message_stop"}\n\n')

    async def answer(request: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"%x\r\n%s\r\n" % (len(start), start))
        await writer.drain()
        await asyncio.to_thread(release.wait, 30)  # the rest only once the client holds the start
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(end), end))

    _, gateway = serve(answer)
    with post(gateway.port, stream=True) as sock:
        received = b""
        while b"message_start" not in received:
            piece = sock.recv(65536)
            assert piece, received
            received += piece
        assert not release.is_set()  # it came while the upstream still held the rest
        release.set()
        while not received.endswith(b"0\r\n\r\n"):
            piece = sock.recv(65536)
            assert piece, received
            received += piece
    assert b"message_stop" in received and b"event: error" not in received
    assert b"content-type: application/json" in received.split(b"\r\n\r\n")[0].lower()


def gzipped(payload: bytes, *, content_type: bytes) -> object:
    async def answer(request: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        data = gzip.compress(payload)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\ncontent-encoding: gzip\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        for i in range(0, len(data), 50):  # in pieces, as a stream would come
            piece = data[i:i + 50]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        writer.write(b"0\r\n\r\n")

    return answer


MESSAGE = json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
                      "content": [{"type": "text", "text": "hi"}], "usage": {"input_tokens": 3, "output_tokens": 5}}).encode()
STREAM = (b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":3}}}\n\n'
          b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


@pytest.mark.parametrize(("payload", "content_type", "stream"),
                         [(MESSAGE, b"application/json", False), (STREAM, b"text/event-stream", True),
                          (STREAM[:60], b"text/event-stream", True)],  # a stream cut short: nothing appended
                         ids=["message", "stream", "broken stream"])
def test_a_gzipped_answer_reaches_the_client_as_sent_with_its_encoding(
    serve: Callable[..., tuple[RawUpstream, GatewayProcess]], payload: bytes, content_type: bytes, stream: bool
) -> None:
    _, gateway = serve(gzipped(payload, content_type=content_type))
    with post(gateway.port, stream=stream) as sock:
        reply = read_reply(sock)
    assert reply.status == 200 and reply.headers["content-encoding"] == "gzip"
    assert gzip.decompress(reply.body) == payload
    assert "Traceback" not in gateway.logs()


def test_json_answering_a_stream_request_is_passed_on_as_it_is(serve: Callable[..., tuple[RawUpstream, GatewayProcess]]) -> None:
    # A provider that ignores stream: true. Relayed as it comes, and no SSE error event of the
    # gateway's is appended to a body that is not an event stream.
    async def answer(request: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(MESSAGE) + MESSAGE)

    _, gateway = serve(answer)
    with post(gateway.port, stream=True) as sock:
        reply = read_reply(sock)
    assert reply.status == 200 and reply.body == MESSAGE
