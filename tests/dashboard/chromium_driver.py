"""Headless Chromium driven over its DevTools protocol, with aiohttp's websocket client.

No new dependency: aiohttp is the gateway's own. Enough of the protocol for the dashboard's
tests and the README's screenshot: open a URL, evaluate JavaScript, wait for a condition with
a deadline, answer an HTTP auth challenge, take a screenshot.

    async with Chromium.launch(tmp_path) as browser:
        await browser.navigate(gw.url + "/")
        await browser.wait_for("document.querySelectorAll('#providers .card').length > 0")

``CHROMIUM`` is None when no Chromium is installed (tests skip, saying so); the flags are the
ones this machine's notes give for a closed network (no background connections at all).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["CHROMIUM", "Chromium", "DevToolsError"]

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)

FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-port=0",  # any free port: it writes the one it took to DevToolsActivePort
)


class DevToolsError(RuntimeError):
    """A DevTools command failed, or a wait ran out of time."""


Handler = Callable[[dict[str, Any]], Awaitable[None]]


class Chromium:
    """One headless browser with one page; use ``async with Chromium.launch(profile_dir)``."""

    def __init__(self, profile: Path) -> None:
        self._profile = profile
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: dict[str, Handler] = {}
        self._reader: asyncio.Task[None] | None = None
        self.console: list[str] = []  # console messages and uncaught exceptions of the page

    @classmethod
    def launch(cls, profile: Path) -> Chromium:
        return cls(profile)

    async def __aenter__(self) -> Chromium:
        if CHROMIUM is None:
            raise DevToolsError("no Chromium installed (apt-get install chromium)")
        self._profile.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self._proc.poll() is not None:
                raise DevToolsError(f"Chromium exited with {self._proc.returncode}: {self._stderr()}")
            if time.monotonic() > deadline:
                raise DevToolsError(f"Chromium did not open its DevTools port in 30 s: {self._stderr()}")
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        self._http = aiohttp.ClientSession()
        async with self._http.get(f"http://127.0.0.1:{port}/json/list") as answer:
            targets = await answer.json()
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = await self._http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        self.on("Runtime.consoleAPICalled", self._console)
        self.on("Runtime.exceptionThrown", self._exception)
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(self._proc.wait, 10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                await asyncio.to_thread(self._proc.wait)
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()

    def _stderr(self) -> str:
        if self._proc is None or self._proc.stderr is None or self._proc.poll() is None:
            return ""
        return self._proc.stderr.read().decode(errors="replace")[-2000:]

    # --- the protocol -------------------------------------------------------------------------

    def on(self, event: str, handler: Handler) -> None:
        """Run ``handler(params)`` (as a task) for every ``event``."""
        self._handlers[event] = handler

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One command; its result, or DevToolsError with the browser's message."""
        assert self._ws is not None
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        await self._ws.send_str(json.dumps({"id": command_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise DevToolsError(f"{method}: {reply['error'].get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            doc = json.loads(message.data)
            if "id" in doc:
                future = self._pending.pop(doc["id"], None)
                if future is not None and not future.done():
                    future.set_result(doc)
            elif doc.get("method") in self._handlers:
                asyncio.create_task(self._handlers[doc["method"]](doc.get("params", {})))

    async def _console(self, params: dict[str, Any]) -> None:
        self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))

    async def _exception(self, params: dict[str, Any]) -> None:
        details = params.get("exceptionDetails", {})
        self.console.append("exception: " + str(details.get("exception", {}).get("description", details.get("text"))))

    # --- what tests do ------------------------------------------------------------------------

    async def navigate(self, url: str) -> None:
        result = await self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise DevToolsError(f"cannot open {url}: {result['errorText']}")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, *, timeout: float = 15.0, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy; its value. DevToolsError with the page's text at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = await self.evaluate(expression)
            except DevToolsError:
                value = None  # the page is between two documents
            if value:
                return value
            if time.monotonic() > deadline:
                text = await self.evaluate("document.body ? document.body.innerText.slice(0, 3000) : ''")
                raise DevToolsError(
                    f"timed out after {timeout} s waiting for {what or expression}\n"
                    f"page text: {text}\nconsole: {self.console[-10:]}"
                )
            await asyncio.sleep(0.1)

    async def answer_auth(self, username: str | None, password: str | None) -> None:
        """Answer HTTP auth challenges with these credentials (None: cancel, as a person who closes the prompt)."""

        async def paused(params: dict[str, Any]) -> None:
            await self.send("Fetch.continueRequest", requestId=params["requestId"])

        async def challenged(params: dict[str, Any]) -> None:
            if username is None:
                response: dict[str, Any] = {"response": "CancelAuth"}
            else:
                response = {"response": "ProvideCredentials", "username": username, "password": password}
            await self.send("Fetch.continueWithAuth", requestId=params["requestId"], authChallengeResponse=response)

        self.on("Fetch.requestPaused", paused)
        self.on("Fetch.authRequired", challenged)
        await self.send("Fetch.enable", handleAuthRequests=True)

    async def serve_instead(self, url_pattern: str, body: bytes, content_type: str = "application/json") -> None:
        """Answer requests matching ``url_pattern`` (``*`` wildcards) with ``body``, not the server."""

        async def paused(params: dict[str, Any]) -> None:
            await self.send(
                "Fetch.fulfillRequest", requestId=params["requestId"], responseCode=200,
                responseHeaders=[{"name": "content-type", "value": content_type}],
                body=base64.b64encode(body).decode(),
            )

        self.on("Fetch.requestPaused", paused)
        await self.send("Fetch.enable", patterns=[{"urlPattern": url_pattern}])

    async def screenshot(self, path: Path, *, width: int = 1440, height: int = 900) -> None:
        """A PNG of the whole page at ``width`` CSS pixels (taller pages are captured whole)."""
        await self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        full = await self.evaluate("document.documentElement.scrollHeight")
        await self.send("Emulation.setDeviceMetricsOverride", width=width, height=int(full), deviceScaleFactor=1, mobile=False)
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
