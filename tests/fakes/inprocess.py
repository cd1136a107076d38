"""The real gateway app served inside the test process, on a thread with its own event loop.

    gw = start_inprocess_gateway(config_text, workdir=tmp_path)   # or the `inprocess_gateway` fixture
    client = anthropic_client(gw, api_key="sk-client")
    ...
    gw.stop()

What runs is what the one worker of `gateway serve --config F --no-watch` runs: `create_app` with
`WorkerSettings` and the config `load_config` finds at F, the real `Runtime` and aiohttp transport,
served by Sanic (`app.create_server`) on a loopback socket bound to a free port, with Sanic's
lifecycle in order: startup, before_server_start, serving, after_server_start; then at `stop()`
before_server_stop, close, after_server_stop, the loop closed. No process starts: start and stop
take 26 ms, against 620 ms for a `gateway serve` process (medians, 2 CPUs at load 3).

What belongs to the process and not to the app is not here, and its tests use `GatewayProcess`:
the lines `serve` logs at startup (routes, the security banner, key problems), --workers,
--log-file, signals and exit codes, live reload, `.env` and config discovery. And a few things
are shared by every gateway in this process:
- the environment: the gateway reads `os.environ` while it serves (env keys, HOME for the OAuth
  file), so its variables must be set for as long as it runs: `inprocess_environment` says which,
  the `inprocess_gateway` fixture sets them for the test;
- the metrics: `gateway.ops.metrics.instance()` counts for every gateway of the process, so tests
  that assert metric values stay on subprocesses;
- logging: `create_app` configures the root logger (`setup_logging`); that is undone at once, and
  each gateway keeps the records made on its own thread, formatted as its process prints them.

The loop is asyncio's own, not uvloop as under `gateway serve`: the process-global metrics keep
one flush timer, which the stop of any gateway cancels, from its own thread; asyncio's timer
handles allow that, libuv's belong to their loop's thread.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, cast

import pytest
from sanic import Sanic
from sanic.server.protocols.http_protocol import HttpProtocol

from gateway.server.app import create_app
from gateway.server.serve import BACKLOG
from gateway.settings import FoundConfig, WorkerSettings, load_config, local_url

from ._loop import LoopThread
from .gateway import GatewayStartError, RunningGateway

_names = itertools.count(1)

# Proxy variables would send the gateway's upstream calls elsewhere; a gateway process gets none.
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def inprocess_environment(home: Path, overrides: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
    """The variables to set (None: to remove) while an in-process gateway runs.

    As for a gateway process: HOME is `home` (never the developer's ~/.claude), no proxy
    variables, then `overrides`.
    """
    env: dict[str, str | None] = {
        name: None for name in os.environ if name.lower() in _PROXY_VARIABLES
    }
    env["HOME"] = str(home)
    env.update(overrides or {})
    return env


def apply_environment(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str | None]) -> None:
    """Set `env` (see `inprocess_environment`) until `monkeypatch` undoes it."""
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


class _Server(Protocol):
    """The part of Sanic's AsyncioServer used here, which Sanic leaves unannotated."""

    connections: set[HttpProtocol]

    def startup(self) -> Coroutine[Any, Any, None]: ...
    def before_start(self) -> Coroutine[Any, Any, None]: ...
    def start_serving(self) -> Coroutine[Any, Any, None]: ...
    def after_start(self) -> Coroutine[Any, Any, None]: ...
    def serve_forever(self) -> Coroutine[Any, Any, None]: ...
    def before_stop(self) -> Coroutine[Any, Any, None]: ...
    def close(self) -> asyncio.Task[None] | None: ...
    def after_stop(self) -> Coroutine[Any, Any, None]: ...


class _ThreadRecords(logging.Handler):
    """On the root logger: the records made on one thread, formatted."""

    def __init__(self, level: int, formatter: logging.Formatter | None) -> None:
        super().__init__(level)
        self.setFormatter(formatter)
        self.thread_id: int | None = None
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread_id:
            self.lines.append(self.format(record))


class _SharedLevel:
    """The level of the `gateway` logger while in-process gateways run: the lowest they ask for.

    The root logger keeps pytest's level; the gateway's records are made, or not, by this one.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}
        self._before = logger.level

    def hold(self, key: int, level: int) -> None:
        with self._lock:
            if not self._held:
                self._before = self._logger.level
            self._held[key] = level
            self._logger.setLevel(min(self._held.values()))

    def release(self, key: int) -> None:
        with self._lock:
            self._held.pop(key, None)
            self._logger.setLevel(min(self._held.values()) if self._held else self._before)


_GATEWAY_LEVEL = _SharedLevel(logging.getLogger("gateway"))
# Held while the root logger's handlers and the loggers' levels are changed and put back.
_LOGGING = threading.Lock()


def _build_app(settings: WorkerSettings, found: FoundConfig, name: str) -> tuple[Sanic[Any, Any], logging.Formatter | None]:
    """`create_app`, without what its `setup_logging` does to this process's logging.

    It replaces the root logger's handlers (pytest's among them) with one to stderr and sets the
    root's and some loggers' levels: all put back here. Returned: the formatter it chose.
    """
    root = logging.getLogger()
    with _LOGGING:
        handlers, root_level = list(root.handlers), root.level
        levels = {logger: logger.level for logger in _loggers()}
        try:
            app = create_app(settings, found.ruleset, name=name)
            added = [handler for handler in root.handlers if handler not in handlers]
        finally:
            for handler in list(root.handlers):
                root.removeHandler(handler)
            for handler in handlers:
                root.addHandler(handler)
            root.setLevel(root_level)
            for logger in _loggers():
                logger.setLevel(levels.get(logger, logging.NOTSET))
    return app, added[0].formatter if added else None


def _loggers() -> list[logging.Logger]:
    # list() copies the dict in one step: other threads may create loggers meanwhile.
    return [logger for logger in list(logging.Logger.manager.loggerDict.values()) if isinstance(logger, logging.Logger)]


class InProcessGateway(RunningGateway):
    """A gateway app served on a thread of this process; `stop()` it (the fixture does).

    `url` is http://127.0.0.1:PORT (also for a 0.0.0.0 bind), `port`, `host` (the bind),
    `config_path`, `env` (the variables it needs set, see `inprocess_environment`), `app` (the
    Sanic app), `logs()`, `wait_for_log(text)`, `request(...)`, `health()`, `running`.
    """

    def __init__(
        self, config_path: Path, *, host: str, log_level: str, log_format: str, env: Mapping[str, str | None]
    ) -> None:
        found = load_config(str(config_path), os.environ, config_path.parent)
        self.config_path = config_path
        self.host = host
        self.env = dict(env)
        self.name = f"gateway-inprocess-{next(_names)}"
        # Bound here, so the port is known before the app is built (WorkerSettings carries it)
        # and nobody can take it meanwhile; it listens once the app has started.
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self.port = int(self._sock.getsockname()[1])
        self.url = local_url(host, self.port)
        settings = WorkerSettings(found.discovery, host, self.port, log_level, log_format, watch=False)
        try:
            self.app, formatter = _build_app(settings, found, self.name)
        except BaseException:
            self._sock.close()
            raise
        # Sanic's TouchUp rewrites methods of its protocol classes (dropping the dispatch of
        # signals nobody listens to) when an app starts; for a second app in the same process
        # it fails on its own rewritten code (KeyError: 'send'). Unrewritten, they do the same.
        self.app.config.TOUCHUP = False
        level = logging.getLevelName(log_level.upper())
        self._level = level if isinstance(level, int) else logging.INFO
        self._records = _ThreadRecords(self._level, formatter)
        self._thread = LoopThread(f"inprocess-{self.name}")
        self._server: _Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self, timeout: float = 20.0) -> InProcessGateway:
        """Serve; returns once connections are accepted (GatewayStartError on a failure)."""
        with _LOGGING:
            logging.getLogger().addHandler(self._records)
        _GATEWAY_LEVEL.hold(id(self), self._level)
        self._thread.start()
        try:
            self._thread.run(self._start(), timeout=timeout)
        except Exception as error:
            self.stop()
            raise GatewayStartError(
                f"in-process gateway did not start: {type(error).__name__}: {error}\n{self.logs()}"
            ) from error
        return self

    async def _start(self) -> None:
        self._records.thread_id = threading.get_ident()
        created = await self.app.create_server(
            sock=self._sock, backlog=BACKLOG, access_log=False,
            # Not accepting before the listeners ran: a request must find the runtime there.
            asyncio_server_kwargs={"start_serving": False},
        )
        self._server = server = cast(_Server, created)
        await server.startup()
        await server.before_start()
        await server.start_serving()
        await server.after_start()
        self._serving = asyncio.create_task(server.serve_forever())

    async def _stop(self, grace: float) -> None:
        server = self._server
        if server is None:  # failed before Sanic started: nothing of the app to stop
            return
        if self.app.state.is_started:
            await server.before_stop()
        closed = server.close()  # no new connections; ends serve_forever
        await _drain(server.connections, grace)
        if closed is not None:
            await closed
        if self._serving is not None:
            await asyncio.wait([self._serving])
        if self.app.state.is_started:
            await server.after_stop()  # the runtime closes its upstream connections

    def logs(self) -> str:
        """The gateway's log records so far, one line each, as its process would print them."""
        return "".join(line + "\n" for line in list(self._records.lines))

    @property
    def running(self) -> bool:
        return self._server is not None and not self._stopped

    def stop(self, timeout: float = 10.0, grace: float = 1.0) -> None:
        """Stop serving: requests in flight get `grace` seconds, then their connections are closed.

        Then the thread's loop is closed and the app leaves Sanic's registry; idempotent.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            if self._thread.loop.is_running():
                loop = self._thread.loop
                self._thread.run(self._stop(grace), timeout=timeout)
                self._thread.run(loop.shutdown_asyncgens(), timeout=timeout)
                self._thread.run(loop.shutdown_default_executor(), timeout=timeout)
        finally:
            self._thread.stop()
            self._sock.close()
            Sanic.unregister_app(self.app)
            _GATEWAY_LEVEL.release(id(self))
            with _LOGGING:
                logging.getLogger().removeHandler(self._records)


async def _drain(connections: set[HttpProtocol], grace: float) -> None:
    """Close idle connections now, busy ones once they finish or `grace` is over (as Sanic does)."""
    for connection in list(connections):
        connection.close_if_idle()
    deadline = time.monotonic() + grace
    while connections and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    for connection in list(connections):
        connection.close()


def start_inprocess_gateway(
    config_text: str,
    *,
    workdir: Path,
    env: Mapping[str, str | None] | None = None,
    host: str = "127.0.0.1",
    log_level: str = "info",
    log_format: str = "text",
    startup_timeout: float = 20.0,
) -> InProcessGateway:
    """Write `config_text` to `workdir/config/routes.toml` and serve it in this process.

    `env`: recorded as the gateway's `env` (see `inprocess_environment`); the caller sets it in
    os.environ, before this call and while the gateway runs. `host`: where it binds ("0.0.0.0" for
    a LAN gateway). Raises GatewayStartError if it does not start; rules.errors.ConfigError for
    an invalid config.
    """
    config_dir = workdir / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    config_path = config_dir / "routes.toml"
    config_path.write_text(config_text)
    gateway = InProcessGateway(config_path, host=host, log_level=log_level, log_format=log_format, env=env or {})
    return gateway.start(startup_timeout)


@contextmanager
def running_inprocess_gateway(
    config_text: str,
    *,
    workdir: Path,
    env: Mapping[str, str | None] | None = None,
    home: Path | None = None,
    **options: Any,
) -> Iterator[InProcessGateway]:
    """A gateway for a whole module (one serves many tests): its environment set, stopped at exit.

    `home`: HOME (default `workdir/home`, empty); `options`: those of `start_inprocess_gateway`.
    Each test begins without the names `_hermetic_environment` removes, ZAI_API_KEY among them:
    give the gateway its variables back per test with `apply_environment(monkeypatch, gw.env)`.
    """
    if home is None:
        home = workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
    variables = inprocess_environment(home, env)
    with pytest.MonkeyPatch.context() as monkeypatch:
        apply_environment(monkeypatch, variables)
        gateway = start_inprocess_gateway(config_text, workdir=workdir, env=variables, **options)
        try:
            yield gateway
        finally:
            gateway.stop()
