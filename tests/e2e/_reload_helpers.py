"""Helpers for the live-reload tests: configs with two fakes, polling /health, a gated stream.

    text = two_providers(a, b, haiku="a")         # haiku -> a, everything else -> b
    gw = gateway_factory(text, watch=True)
    write_in_place(gw.config_path, two_providers(a, b, haiku="b"))
    wait_for(lambda: generation(gw) == 2, "generation 2")
    assert answered_by(gw, HAIKU) == "b"

The fakes answer "[NAME] model=M hello from the fake NAME upstream", so the text of an answer
says which upstream served it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiohttp import web

from fakes import FakeUpstream, Handler
from fakes.config import routes_toml
from fakes.gateway import GatewayProcess

HAIKU = "claude-haiku-5-5"
SONNET = "claude-sonnet-5-5"
HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "sk-client", "content-type": "application/json"}

T = TypeVar("T")


def two_providers(a: FakeUpstream, b: FakeUpstream, *, haiku: str = "a", haiku_model: str | None = None,
                  server: Mapping[str, Any] | None = None) -> str:
    """Providers ``a`` and ``b`` (the client's own key); route haiku -> ``haiku``, the rest -> b."""
    target: dict[str, Any] = {"provider": haiku}
    if haiku_model is not None:
        target["model"] = haiku_model
    return routes_toml(
        server=server,
        providers={
            "a": {"base_url": a.url, "key": {"client": True}},
            "b": {"base_url": b.url, "key": {"client": True}},
        },
        routes=[
            {"name": "haiku", "match": "*haiku*", "to": [target]},
            {"name": "default", "match": "*", "to": "b"},
        ],
    )


def wait_for(predicate: Callable[[], T], what: str, timeout: float = 10.0, interval: float = 0.02) -> T:
    """Poll ``predicate`` until it returns something true; return it (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def health(gw: GatewayProcess) -> dict[str, Any]:
    """GET /health on a fresh connection (with --workers N, any worker may answer)."""
    response = httpx.get(gw.url + "/health", timeout=5.0)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def config_state(gw: GatewayProcess) -> dict[str, Any]:
    state: dict[str, Any] = health(gw)["config"]
    return state


def generation(gw: GatewayProcess) -> int:
    return int(config_state(gw)["generation"])


def ask(gw: GatewayProcess, model: str, client: httpx.Client | None = None) -> httpx.Response:
    """One non-streaming POST /v1/messages."""
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    if client is not None:
        return client.post(gw.url + "/v1/messages", json=body, headers=HEADERS)
    return httpx.post(gw.url + "/v1/messages", json=body, headers=HEADERS, timeout=10.0)


def answered_by(gw: GatewayProcess, model: str, client: httpx.Client | None = None) -> str:
    """The name of the fake upstream that answered a request for ``model``."""
    response = ask(gw, model, client)
    assert response.status_code == 200, response.text
    match = re.match(r"\[([^\]]+)\]", response.json()["content"][0]["text"])
    assert match, response.text
    return match.group(1)


def write_in_place(path: Path, text: str) -> None:
    """Overwrite the file itself (truncate and write), as `echo > file` and some editors do."""
    with open(path, "w") as f:
        f.write(text)


def write_by_rename(path: Path, text: str) -> None:
    """Write a temporary file beside ``path`` and rename it over ``path``, as most editors do."""
    temporary = path.with_name(f".{path.name}.swp-{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


# --- the Kubernetes ConfigMap layout --------------------------------------------------------------


class ConfigMapDir:
    """A directory laid out as Kubernetes mounts a ConfigMap, and its atomic update.

        dir/routes.toml -> ..data/routes.toml
        dir/..data      -> ..2024_01_01_00_00_00.N      (swapped by renaming a new symlink over it)
        dir/..2024_01_01_00_00_00.N/routes.toml
    """

    def __init__(self, directory: Path, name: str = "routes.toml") -> None:
        self.directory = directory
        self.name = name
        self.version = 0
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path:
        return self.directory / self.name

    def publish(self, text: str) -> None:
        """Write a new version as the kubelet does: new timestamped dir, swap ..data, drop the old."""
        self.version += 1
        old = os.readlink(self.directory / "..data") if (self.directory / "..data").is_symlink() else None
        stamped = f"..2024_01_01_00_00_00.{self.version}"
        (self.directory / stamped).mkdir()
        (self.directory / stamped / self.name).write_text(text)
        temporary = self.directory / "..data_tmp"
        os.symlink(stamped, temporary)
        os.replace(temporary, self.directory / "..data")
        if not self.path.is_symlink():
            os.symlink(f"..data/{self.name}", self.path)
        if old is not None:
            (self.directory / old / self.name).unlink()
            (self.directory / old).rmdir()


# --- a stream held open until the test lets it finish ---------------------------------------------


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def text_stream_events(text: str, model: str) -> list[bytes]:
    """Anthropic's event sequence for a one-text-block answer, one text_delta per word."""
    usage = {"input_tokens": 5, "output_tokens": 1}
    message = {"id": "msg_reload_test", "type": "message", "role": "assistant", "model": model, "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": usage}
    events = [
        _sse("message_start", {"type": "message_start", "message": message}),
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
        _sse("ping", {"type": "ping"}),
    ]
    for word in re.findall(r"\S+\s*", text):
        events.append(_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                   "delta": {"type": "text_delta", "text": word}}))
    events += [
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": len(text.split())}}),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return events


class GatedStream:
    """A fake upstream behaviour: stream the first events, wait for ``release()``, send the rest.

    ``started`` is set once the first ``hold_after`` events were written, so the test knows the
    stream is in flight; ``finished`` once the last byte went out.
    """

    def __init__(self, upstream_name: str, hold_after: int = 3, timeout: float = 20.0) -> None:
        self.upstream_name = upstream_name
        self.hold_after = hold_after
        self.timeout = timeout
        self.started = threading.Event()
        self.finished = threading.Event()
        self._gate = threading.Event()

    def release(self) -> None:
        self._gate.set()

    @property
    def behaviour(self) -> Handler:
        return Handler(self._serve)

    async def _serve(self, request: web.BaseRequest, recorded: Any) -> web.StreamResponse:
        model = recorded.json.get("model", "unknown")
        events = text_stream_events(f"[{self.upstream_name}] model={model} a slow answer in several words", model)
        response = web.StreamResponse(status=200, headers={"content-type": "text/event-stream; charset=utf-8",
                                                           "cache-control": "no-cache"})
        await response.prepare(request)
        for event in events[: self.hold_after]:
            await response.write(event)
        self.started.set()
        deadline = time.monotonic() + self.timeout
        while not self._gate.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for event in events[self.hold_after:]:
            await response.write(event)
        await response.write_eof()
        self.finished.set()
        return response


def stream_text(lines: Iterable[str]) -> tuple[str, list[str]]:
    """The text of an SSE stream's text deltas, and its event names, in order."""
    text, events = [], []
    for line in lines:
        if line.startswith("event:"):
            events.append(line[len("event:"):].strip())
        elif line.startswith("data:"):
            data = json.loads(line[len("data:"):])
            if data.get("type") == "content_block_delta" and data["delta"]["type"] == "text_delta":
                text.append(data["delta"]["text"])
    return "".join(text), events
