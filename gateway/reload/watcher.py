"""Live reload: watch routes.toml and the OAuth files the rules use, apply changes, keep serving.

Every worker runs one ``ConfigWatch``, started with its event loop::

    change in a watched directory (watchfiles, debounced, in a daemon thread)
      -> routes.toml: read, hash; same bytes as the rules in use -> nothing
                      else load off the loop -> live.swap(new) | live.fail(error), logged once
      -> credentials file changed: say so (the credential cache re-reads it by itself)
      -> the paths moved (symlink swap, other OAuth files in the new rules): watch those instead

``reload_now()`` looks at the files at once, as a change would (the server calls it on SIGHUP,
also with ``--no-watch``, where ``run()`` is never started).

The watcher knows nothing of the server: whoever starts it says what else to do after a swap
or a failure (``on_swap``, ``on_fail``: new timeouts, metrics).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping

from watchfiles import Change, watch

from gateway.reload.live import LiveConfig, LoadedConfig
from gateway.reload.paths import WatchPlan, oauth_files
from gateway.reload.reloader import ConfigReloader, CredentialFiles
from gateway.upstream.credentials import CredentialResolver
from rules.discover import Discovery
from rules.model import RuleSet

__all__ = ["ConfigWatch", "describe_watch"]

log = logging.getLogger("gateway")

# watchfiles groups changes until STEP_MS pass without one (an editor's burst of writes ends in a
# single reload, STEP_MS after its last write), but never longer than DEBOUNCE_MS, so a busy
# directory cannot hold an edit back: a change applies well within a second.
DEBOUNCE_MS = 500
STEP_MS = 50
# The blocking watch returns this often when nothing changes; its first return says "watching".
TICK_MS = 1000
# After the watcher itself failed (a watched directory vanished at the wrong moment, ...).
RETRY_S = 1.0
# How long a stopping worker waits for the watcher (its thread notices the stop within STEP_MS).
STOP_TIMEOUT_S = 2.0
class _Watcher:
    """One worker's watch loop: plan, watch, react, plan again."""

    def __init__(self, reloader: ConfigReloader | None, credentials: CredentialFiles,
                 live: LiveConfig, env: Mapping[str, str]) -> None:
        self.reloader = reloader
        self.credentials = credentials
        self.live = live
        self.env = env

    def plan(self) -> WatchPlan:
        files = list(self.credentials.paths)
        if self.reloader is not None:
            files.insert(0, str(self.reloader.path))
        return WatchPlan.of(files)

    async def react(self) -> None:
        if self.reloader is not None and await self.reloader.check() is not None:
            wanted = oauth_files(self.live.current.ruleset, self.env)
            if set(wanted) != set(self.credentials.paths):
                self.credentials.track(wanted)
                log.info("credentials files watched now: %s", ", ".join(wanted) or "none")
        self.credentials.check()

    async def run(self, stop: threading.Event) -> None:
        """Watch until ``stop`` is set; any failure is logged and the watch starts again."""
        while not stop.is_set():
            try:
                await self.watch_once(stop)
            except FileNotFoundError as exc:
                # A watched directory went away between planning and watching: plan again.
                log.debug("watched directory disappeared (%s); watching again", exc)
                await asyncio.sleep(STEP_MS / 1000)
            except Exception:
                log.exception("config watcher failed; watching again in %g s", RETRY_S)
                await asyncio.sleep(RETRY_S)

    async def watch_once(self, worker_stop: threading.Event) -> None:
        """Watch the planned directories until the plan changes (a symlink swap, other
        credentials files in new rules) or the worker stops."""
        plan = self.plan()
        stop = _Stop(worker_stop)
        inbox: asyncio.Queue[set[tuple[Change, str]] | BaseException | None] = asyncio.Queue()
        log.debug("watching %s", ", ".join(sorted(plan.directories)))
        threading.Thread(target=_watch_thread, args=(plan, stop, asyncio.get_running_loop(), inbox),
                         name="config-watcher", daemon=True).start()
        try:
            while True:
                item = await inbox.get()
                if item is None:
                    return  # stopped
                if isinstance(item, BaseException):
                    raise item
                # The first item may be an empty "watching now" tick: either way, look at the
                # files, which also covers whatever changed while nothing watched (the worker's
                # startup, the previous plan's last moments).
                await self.react()
                if self.plan() != plan:
                    return
        finally:
            stop.set()  # the thread ends within one step


def _watch_thread(plan: WatchPlan, stop: _Stop, loop: asyncio.AbstractEventLoop,
                  inbox: asyncio.Queue[set[tuple[Change, str]] | BaseException | None]) -> None:
    """watchfiles' blocking watch, in a daemon thread: a worker that exits never waits for it.

    Hands each batch of relevant changes to the loop; first, an empty batch as soon as the
    watch is set up (its first timeout), then None when it stops, or the exception it raised.
    """

    def post(item: set[tuple[Change, str]] | BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(inbox.put_nowait, item)
        except RuntimeError:
            pass  # the loop is closed: the worker is gone

    try:
        ticked = False
        for changes in watch(*sorted(plan.directories), watch_filter=plan.relevant, debounce=DEBOUNCE_MS,
                             step=STEP_MS, rust_timeout=TICK_MS, yield_on_timeout=True, stop_event=stop,
                             recursive=False):
            if changes or not ticked:
                ticked = True
                post(changes)
    except Exception as exc:
        post(exc)
    else:
        post(None)


class _Stop:
    """watchfiles' stop event for one plan: set on its own (a new plan) or by the worker's stop."""

    def __init__(self, worker: threading.Event) -> None:
        self._worker = worker
        self._own = threading.Event()

    def is_set(self) -> bool:
        return self._own.is_set() or self._worker.is_set()

    def set(self) -> None:
        self._own.set()


class ConfigWatch:
    """One worker's watcher of its config file and the OAuth files in use.

    ``run()`` as a task of the worker's loop, until ``stop()``; any error inside is logged and
    the watch goes on. ``on_swap`` is called after each applied reload, ``on_fail`` after each
    version that could not be applied.
    """

    def __init__(
        self,
        discovery: Discovery,
        live: LiveConfig,
        credentials: CredentialResolver,
        env: Mapping[str, str],
        *,
        listening: str = "",
        on_swap: Callable[[LoadedConfig], None] | None = None,
        on_fail: Callable[[], None] | None = None,
    ) -> None:
        self._live = live
        reloader = None
        if discovery.kind == "file" and discovery.path is not None:
            reloader = ConfigReloader(discovery.path, live, env, listening=listening,
                                      on_swap=on_swap, on_fail=on_fail)
        files = CredentialFiles(credentials)
        files.track(oauth_files(live.current.ruleset, env))
        # Nothing to watch (the legacy environment or the embedded default, no OAuth file).
        self._watcher = _Watcher(reloader, files, live, env) if reloader or files.paths else None
        self._stop = threading.Event()
        self._task: asyncio.Task[object] | None = None
        self._source = "the legacy environment" if discovery.kind == "env" else "the embedded default"
        self._asked: set[asyncio.Task[None]] = set()  # reload_now() tasks, kept until they end

    def reload_now(self) -> None:
        """Look at the config (and credentials) files now, as a change would: for SIGHUP.

        Call it on the worker's loop (a signal handler added with ``loop.add_signal_handler``).
        """
        task = asyncio.get_running_loop().create_task(self._reload_now())
        self._asked.add(task)
        task.add_done_callback(self._asked.discard)

    async def _reload_now(self) -> None:
        watcher = self._watcher
        live = self._live
        if watcher is None or watcher.reloader is None:
            log.info("config: reload asked (SIGHUP), but the config comes from %s, which is only read at "
                     "start: restart the gateway to change it", self._source)
            if watcher is not None:
                watcher.credentials.check()
            return
        before = live.current.generation
        try:
            await watcher.react()
        except Exception:  # a bug here must not end the worker: the signal handler has no caller
            log.exception("config: reload asked (SIGHUP) failed")
            return
        if live.current.generation == before and live.last_error is None:
            log.info("config: reload asked (SIGHUP): %s is unchanged; still serving generation %d",
                     watcher.reloader.path, before)

    async def run(self) -> None:
        """Watch until ``stop()``."""
        if self._watcher is None:
            return
        # watchfiles logs every batch at INFO ("1 change detected"); our own lines say what it meant.
        logging.getLogger("watchfiles").setLevel(logging.WARNING)
        self._task = asyncio.current_task()
        try:
            await self._watcher.run(self._stop)
        except asyncio.CancelledError:
            # A server cancels its tasks when told to stop: that is our stop too (the thread
            # sees it within one step). Ending normally keeps "task was cancelled" warnings away.
            self._stop.set()

    async def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """End the watch and wait for it (a server's shutdown may never run the loop again)."""
        self._stop.set()
        task = self._task
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()


def describe_watch(discovery: Discovery, ruleset: RuleSet, env: Mapping[str, str], enabled: bool) -> list[str]:
    """The startup log's lines about live reload: what is watched, or why nothing is."""
    if not enabled:
        return ["live reload is off (--no-watch): changes to the config apply at the next start"]
    lines = []
    if discovery.kind == "file" and discovery.path is not None:
        lines.append(f"watching {discovery.path} for changes: a valid edit applies within a second, "
                     "a broken one is reported and the current rules keep serving")
    else:
        source = "the legacy environment" if discovery.kind == "env" else "the embedded default"
        lines.append(f"the config comes from {source}, which is not watched: restart the gateway to change it")
    files = oauth_files(ruleset, env)
    if files:
        lines.append(f"watching credentials file{'s' if len(files) > 1 else ''} {', '.join(files)}: "
                     "a `claude` login applies at once")
    return lines
