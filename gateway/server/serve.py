"""``gateway serve``: find and check the config, bind the address, then run the Sanic workers.

The main process validates the config and binds the listening socket before any worker starts,
so an invalid file, a port in use or a port it may not use is fatal at once, in one line (exit
1; an invalid file's problems come first as ``file:line: path: message``), instead of a
traceback, or a crash loop of workers under a service manager. The line that says the gateway
listens is logged once it does (``after_server_start``).
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import __version__
from gateway.client_keys import startup_problems
from gateway.ops import http
from gateway.ops.logs import setup_logging
from gateway.settings import (
    ServeOptions,
    WorkerSettings,
    is_loopback,
    listen_address,
    load_config,
    local_url,
)
from rules.errors import ConfigError

if TYPE_CHECKING:
    from sanic import Sanic

log = logging.getLogger("gateway")

__all__ = ["BACKLOG", "bind_failure", "serve"]

BACKLOG = 4096


def serve(options: ServeOptions) -> int:
    """Run the gateway until interrupted. Returns the process exit code."""
    from sanic import Sanic
    from sanic.server.socket import bind_socket
    from sanic.worker.loader import AppLoader

    from gateway.ops.metrics import multiprocess_directory
    from gateway.reload.watcher import describe_watch
    from gateway.server.app import create_app, describe_routes

    try:
        setup_logging(options.log_level, options.log_format, options.log_file)
    except OSError as exc:
        print(f"Error: cannot write the log file {options.log_file}: {_reason(exc)}; the gateway did not start",
              file=sys.stderr)
        return 1
    try:
        found = load_config(options.config, os.environ, Path.cwd())
    except ConfigError as exc:
        if len(exc.problems) == 1 and exc.line is None and not exc.path:
            # Not found, unreadable, a directory: about the file, not its content: one line.
            print(f"Error: {exc.render()}; the gateway did not start", file=sys.stderr)
            return 1
        print(exc.render(), file=sys.stderr)
        print("Error: the config is invalid; the gateway did not start", file=sys.stderr)
        return 1
    discovery, ruleset = found.discovery, found.ruleset
    host, port = listen_address(ruleset, options.host, options.port)
    if hasattr(signal, "SIGHUP"):
        # Until each worker handles it (a reload), a SIGHUP must not end the gateway starting up.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        # Bound here, before any worker, with Sanic's own function: the workers inherit it.
        sock = bind_socket(host, port, backlog=BACKLOG)
    except OSError as exc:
        print(f"Error: {bind_failure(host, port, exc)}; the gateway did not start", file=sys.stderr)
        return 1

    log.info("gateway %s starting (%d worker%s)", __version__, options.workers, "" if options.workers == 1 else "s")
    log.info("config: %s", discovery.reason)
    for warning in ruleset.warnings:
        log.warning("config: %s", warning.render())
    for line in describe_routes(ruleset):
        log.info("route %s", line)
    for line in describe_watch(discovery, ruleset, os.environ, options.watch):
        log.info("%s", line)
    if not is_loopback(host) and not ruleset.server.client_keys:
        # Not one line among the routes: a banner, on stderr too when the log goes to a file.
        banner = (
            f"!!! SECURITY WARNING: listening on {host} WITHOUT server.client_keys !!!\n"
            "!!! Anyone who can reach this port can use the configured providers and credentials.\n"
            "!!! Set client_keys in routes.toml (see examples/lan.toml), or listen on 127.0.0.1."
        )
        for line in banner.splitlines():
            log.warning("%s", line)
        if options.log_file:
            print(banner, file=sys.stderr)
    for problem in startup_problems(ruleset, os.environ):
        log.error("%s", problem)

    settings = WorkerSettings(
        discovery, host, port, options.log_level, options.log_format, options.watch, options.log_file
    )
    single = options.workers == 1
    # One process: serve the rules just loaded. Several: each worker process loads its own.
    loader = AppLoader(factory=partial(create_app, settings))
    app = create_app(settings, ruleset) if single else loader.load()
    app.prepare(
        host=host,
        port=port,
        sock=sock,
        workers=options.workers,
        single_process=single,
        access_log=False,
        motd=False,
        # Sanic's default (100) overflows when many clients connect at once: uvloop's libuv
        # accepts one connection per loop pass, and the kernel then drops handshakes
        # (benchmarks/soak.py measured 183 of 1,000 streams lost that way). 4096 queues them.
        backlog=BACKLOG,
    )
    if not single:
        app.main_process_ready(_forward_hangups)
    # Created before the workers start, removed when they are gone (metrics of several workers).
    with multiprocess_directory(options.workers):
        if single:
            Sanic.serve_single(primary=app)
        else:
            _stop_promptly_during_startup()
            Sanic.serve(primary=app, app_loader=loader)
    return 0


async def _forward_hangups(app: Sanic[Any, Any]) -> None:
    """In the main process of several workers: pass SIGHUP on to each worker, which reloads.

    A service manager signals the main process only (systemd's ``$MAINPID``); without this the
    signal's default action would end it, and with it every worker.
    """
    manager = app.manager

    def forward(signum: int, frame: object) -> None:
        for process in manager.transient_processes:
            if process.pid:
                try:
                    os.kill(process.pid, signal.SIGHUP)
                except ProcessLookupError:
                    pass  # restarting: the new one reads the current file anyway

    signal.signal(signal.SIGHUP, forward)


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def bind_failure(host: str, port: int, exc: OSError) -> str:
    """Why ``host:port`` cannot be listened on, and what to do, in one line."""
    where = f"cannot listen on {host}:{port}"
    if isinstance(exc, socket.gaierror):
        return f"{where}: {host!r} is not an address of this machine (set --host or [server] host)"
    if exc.errno == errno.EADDRINUSE:
        return f"{where}: the port is in use {_holder(host, port)}"
    if exc.errno == errno.EACCES:
        if port < 1024:
            return f"{where}: permission denied (ports below 1024 need privileges: use --port 8082 or [server] port)"
        return f"{where}: permission denied (a firewall or security policy refuses it: try another --port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: {host} is not an address of this machine (set --host or [server] host)"
    return f"{where}: {_reason(exc)}"


def _holder(host: str, port: int) -> str:
    """Who holds the port: a gateway (it answers /health with its pid) or another program."""
    url = local_url(host, port)
    try:
        doc = http.request("GET", url + "/health", timeout=1.0).json()
    except (http.Unreachable, ValueError):
        doc = None
    if isinstance(doc, dict) and "pid" in doc and "config" in doc:
        return (f"by a gateway already running there (pid {doc['pid']}): use it, stop it "
                "(`gateway stop`), or choose another --port")
    return "by another program: stop it, or choose another --port (or [server] port)"


def _stop_promptly_during_startup() -> None:
    """Make Ctrl-C during worker startup stop the gateway at once.

    Sanic's worker manager waits until every worker acknowledges its start; a SIGINT that
    arrives meanwhile stops the workers but the wait goes on until Sanic's 30 s ack threshold
    (sanic/worker/manager.py, wait_for_ack). Counting a shutdown as "acknowledged" lets the
    manager proceed to its monitor loop, which sees the shutdown message and joins the workers.
    """
    from sanic.worker.manager import WorkerManager

    original = WorkerManager._all_workers_ack
    if getattr(original, "_gateway_patched", False):
        return

    def _all_workers_ack(self: WorkerManager) -> bool:
        return bool(self._shutting_down) or bool(original(self))  # type: ignore[no-untyped-call]

    _all_workers_ack._gateway_patched = True  # type: ignore[attr-defined]
    WorkerManager._all_workers_ack = _all_workers_ack  # type: ignore[method-assign]
