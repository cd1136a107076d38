"""Live reload: watch routes.toml and the OAuth files the rules use, apply changes, keep serving.

Every worker runs ``watch_config`` as a Sanic task::

    change in a watched directory (watchfiles, debounced, in a daemon thread)
      -> routes.toml: read, hash; same bytes as the rules in use -> nothing
                      else load off the loop -> live.swap(new) | live.fail(error), logged once
      -> credentials file changed: say so (the credential cache re-reads it by itself)
      -> the paths moved (symlink swap, other OAuth files in the new rules): watch those instead

Directories are watched, not files: editors replace a file by renaming a new one over it, and
a Kubernetes ConfigMap swaps a symlink (``routes.toml -> ..data/routes.toml``, ``..data ->
..2024_01_01_00_00_00.1``). Which paths matter is worked out again after every change, by
following the symlinks from the configured path.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TYPE_CHECKING, Callable, Iterable, Mapping

from sanic import Sanic
from watchfiles import Change, watch

from gateway.ops import metrics
from gateway.upstream.credentials import CredentialResolver, KeyUnavailable, oauth_path
from gateway.reload.live import LiveConfig, LoadedConfig
from rules.errors import ConfigError, Problem
from rules.loader import load_bytes
from rules.model import RuleSet

if TYPE_CHECKING:
    from gateway.server.app import WorkerSettings
    from gateway.server.runtime import Runtime
    from rules.discover import Discovery

__all__ = [
    "ConfigReloader",
    "CredentialFiles",
    "WatchPlan",
    "describe_changes",
    "describe_watch",
    "oauth_files",
    "restart_only_changes",
    "stop_watching",
    "watch_config",
    "watched_paths",
]

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
# More symlinks than this on one path is a loop.
_MAX_LINKS = 40


# --- which paths matter ----------------------------------------------------------------------


def watched_paths(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Every path whose change can change what reading ``path`` returns.

    That is each symlink met on the way (the file itself, ``..data`` of a ConfigMap, a
    symlinked directory) and the real path at the end, which need not exist. Paths are
    absolute, spelled through the resolved directories, as a directory watch reports them.
    """
    links: list[str] = []
    pending = [p for p in os.path.abspath(path).split(os.sep) if p]
    current = os.sep
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            target = os.readlink(candidate)
        except OSError:  # not a symlink, or not there (yet): take it as it is
            current = candidate
            continue
        links.append(candidate)
        if len(links) > _MAX_LINKS:
            current = candidate  # a loop: reading fails anyway; watch what we have
            break
        if os.path.isabs(target):
            current = os.sep
        pending[:0] = [p for p in target.split(os.sep) if p]
    if pending:
        current = os.path.join(current, *pending)
    return (*links, current) if current not in links else tuple(links)


def _directory_to_watch(path: str) -> str:
    """The directory holding ``path``, or its nearest existing ancestor (watched until it appears)."""
    directory = os.path.dirname(path)
    while not os.path.isdir(directory) and os.path.dirname(directory) != directory:
        directory = os.path.dirname(directory)
    return directory


def oauth_files(ruleset: RuleSet, env: Mapping[str, str]) -> tuple[str, ...]:
    """The OAuth credentials files the rules' key sources read, each once, in config order."""
    found: dict[str, None] = {}
    for provider in ruleset.providers.values():
        for source in provider.key:
            if source.kind == "oauth_file":
                found[oauth_path(source, env)] = None
    return tuple(found)


@dataclass(frozen=True)
class WatchPlan:
    """What to watch now: the directories, and the paths in them whose changes count."""

    directories: frozenset[str]
    paths: frozenset[str]  # the files, their symlinks, and the real paths
    ancestors: frozenset[str]  # their directories: a missing one appearing counts too

    @classmethod
    def of(cls, files: Iterable[str]) -> WatchPlan:
        paths = frozenset(p for f in files for p in watched_paths(f))
        ancestors: set[str] = set()
        for path in paths:
            parent = os.path.dirname(path)
            while parent not in ancestors and os.path.dirname(parent) != parent:
                ancestors.add(parent)
                parent = os.path.dirname(parent)
        directories = frozenset(_directory_to_watch(p) for p in paths)
        return cls(directories, paths, frozenset(ancestors))

    def relevant(self, change: Change, path: str) -> bool:
        """watchfiles' filter: a change to one of our paths, or to a directory on the way to one."""
        return path in self.paths or path in self.ancestors


# --- what changed ----------------------------------------------------------------------------


def _diff(kind: str, old: Mapping[str, object], new: Mapping[str, object]) -> list[str]:
    added = [n for n in new if n not in old]
    removed = [n for n in old if n not in new]
    changed = [n for n in new if n in old and old[n] != new[n]]
    return [
        f"{kind} {what}: {', '.join(names)}"
        for what, names in (("added", added), ("removed", removed), ("changed", changed))
        if names
    ]


def describe_changes(old: RuleSet, new: RuleSet) -> str:
    """One line saying what a reload changed: routes and providers added, removed, changed."""

    def routes(ruleset: RuleSet) -> dict[str, object]:
        # A route "changes" with its patterns, targets or fallback statuses; a provider's own
        # settings are reported under providers, not once more for every route using it.
        return {
            r.name: (r.match, tuple((t.provider.name, t.model) for t in r.to), r.fallback_on)
            for r in ruleset.routes
        }

    old_routes, new_routes = routes(old), routes(new)
    parts = _diff("routes", old_routes, new_routes)
    kept = [name for name in new_routes if name in old_routes]
    if kept != [name for name in old_routes if name in new_routes]:
        parts.append("route order changed")
    parts += _diff("providers", dict(old.providers), dict(new.providers))
    if old.defaults != new.defaults:
        parts.append("defaults changed")
    if old.server != new.server:
        parts.append("server changed")
    return "; ".join(parts) or "no change in effect (comments or formatting only)"


def restart_only_changes(old: RuleSet, new: RuleSet) -> list[str]:
    """The ``[server]`` settings that changed but only apply at the next start."""
    out = []
    for name in ("host", "port", "max_body_mb"):
        before, after = getattr(old.server, name), getattr(new.server, name)
        if before != after:
            out.append(f"server.{name} {_show(before)} -> {_show(after)}")
    return out


def _show(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


# --- routes.toml -------------------------------------------------------------------------------

_MISSING = "missing"


def _read(path: Path) -> tuple[bytes | None, str, str | None]:
    """(bytes, fingerprint, problem): the sha256 of the bytes, or why there are none."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, _MISSING, None
    except OSError as exc:  # a directory, no permission, ...
        reason = exc.strerror or str(exc)
        return None, f"unreadable: {reason}", reason
    return data, hashlib.sha256(data).hexdigest(), None


class ConfigReloader:
    """Applies changes of the config file to one worker's ``LiveConfig``.

    Each version of the file is looked at once: identical bytes do nothing, a broken version
    is logged once and kept in ``live.last_error`` until a good one (or the bytes in use)
    comes back. ``on_swap`` is called after each applied reload, ``on_fail`` after each version
    that could not be applied.
    """

    def __init__(
        self,
        path: Path,
        live: LiveConfig,
        env: Mapping[str, str],
        *,
        listening: str = "",
        on_swap: Callable[[LoadedConfig], None] | None = None,
        on_fail: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.live = live
        self.env = env
        self.listening = listening  # "127.0.0.1:8082", for the restart warning
        self.on_swap = on_swap
        self.on_fail = on_fail
        self._file = str(path)  # as at startup, so messages and /health name it the same way
        self._seen: str | None = live.current.ruleset.source.sha256

    async def check(self) -> LoadedConfig | None:
        """Look at the file now; the new LoadedConfig if a reload was applied."""
        data, fingerprint, problem = await asyncio.to_thread(_read, self.path)
        if fingerprint == self._seen:
            return None
        self._seen = fingerprint
        current = self.live.current
        if data is None:
            self._missing(current, problem)
            return None
        if fingerprint == current.ruleset.source.sha256:
            # Back to the bytes in use (an undo after a broken save, a recreated file).
            if self.live.last_error is not None:
                self.live.clear_error()
                log.info("config: %s is back to the rules in use (generation %d); the last error is cleared",
                         self._file, current.generation)
            return None
        try:
            ruleset = await asyncio.to_thread(load_bytes, data, file=self._file, env=self.env)
        except ConfigError as error:
            self._failed(current, error)
            return None
        except Exception as exc:  # a loader bug must not take the watcher down with it
            log.exception("config: loading %s failed unexpectedly", self._file)
            self._failed(current, ConfigError(Problem(
                f"the gateway could not load this version ({exc.__class__.__name__}: {exc}); "
                "the previous rules stay in use", file=self._file)))
            return None
        return self._apply(current, ruleset)

    def _apply(self, current: LoadedConfig, ruleset: RuleSet) -> LoadedConfig:
        loaded = self.live.swap(ruleset)
        log.info("config reloaded: generation %d (%s)", loaded.generation,
                 describe_changes(current.ruleset, ruleset),
                 extra={"fields": {"event": "config_reloaded", "generation": loaded.generation}})
        known = {w.render() for w in current.ruleset.warnings}
        for warning in ruleset.warnings:
            if warning.render() not in known:
                log.warning("config: %s", warning.render())
        pending = restart_only_changes(current.ruleset, ruleset)
        if pending:
            log.warning(
                "config: %s changed, but host, port and max_body_mb only apply when the gateway "
                "restarts; until then it keeps serving %s with the old values",
                ", ".join(pending), self.listening or "as it started",
            )
        if self.on_swap is not None:
            self.on_swap(loaded)
        return loaded

    def _failed(self, current: LoadedConfig, error: ConfigError) -> None:
        self.live.fail(error)
        if self.on_fail is not None:
            self.on_fail()
        for problem in error.problems:
            log.error("config reload failed, still serving generation %d: %s", current.generation,
                      problem.render(),
                      extra={"fields": {"event": "config_reload_failed", "generation": current.generation}})

    def _missing(self, current: LoadedConfig, problem: str | None) -> None:
        if problem is None:
            message = (f"the config file is gone; generation {current.generation} stays in use "
                       "until it is back")
        else:
            message = (f"cannot read the config file: {problem}; generation {current.generation} "
                       "stays in use until it can be read")
        self.live.fail(ConfigError(Problem(message, file=self._file)))
        if self.on_fail is not None:
            self.on_fail()
        log.warning("config: %s: %s", self._file, message,
                    extra={"fields": {"event": "config_missing", "generation": current.generation}})


# --- credentials files ---------------------------------------------------------------------------


class CredentialFiles:
    """Notices when an OAuth credentials file in use changes, and says what it holds now.

    The credential cache re-reads a changed file on the next request by itself; this only
    tells the user that a ``claude`` login was picked up (or that the file went bad).
    """

    def __init__(self, resolver: CredentialResolver) -> None:
        self.resolver = resolver
        self._seen: dict[str, str] = {}

    def track(self, paths: Iterable[str]) -> None:
        """Watch exactly these files from now on; the ones new here are taken as they are."""
        paths = tuple(paths)
        self._seen = {p: self._seen[p] if p in self._seen else _read(Path(p))[1] for p in paths}

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self._seen)

    def check(self) -> None:
        """Log each tracked file whose content changed since it was last looked at."""
        for path, seen in self._seen.items():
            fingerprint = _read(Path(path))[1]
            if fingerprint != seen:
                self._seen[path] = fingerprint
                level, status = self._status(path)
                log.log(level, "credentials file changed: %s (%s)", path, status,
                        extra={"fields": {"event": "credentials_changed"}})

    def _status(self, path: str) -> tuple[int, str]:
        try:
            token = self.resolver.oauth.token(path)  # fills the cache the next request reads
        except KeyUnavailable as exc:
            return logging.WARNING, str(exc)  # says why, never the secret
        if token.expires_at_ms is None:
            return logging.INFO, "a login without an expiry time"
        until = datetime.fromtimestamp(token.expires_at_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        if token.expired(time.time() * 1000):
            return logging.WARNING, f"the login in it expired at {until}; run `claude` to renew it"
        return logging.INFO, f"a login valid until {until}"


# --- the loop ------------------------------------------------------------------------------------


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


async def watch_config(app: Sanic[Any, Any], runtime: Runtime, settings: WorkerSettings) -> None:
    """Watch the config (and the OAuth files in use) and apply changes to ``runtime.live``.

    Runs until the worker stops; any error is logged and the watch goes on.
    """
    from gateway.server.app import response_timeout  # gateway.server.app imports this module

    def on_swap(loaded: LoadedConfig) -> None:
        # Sanic copies it into each new connection; keep it in step with the new timeouts.
        app.config.RESPONSE_TIMEOUT = response_timeout(loaded.ruleset)
        metrics.reloaded(True, loaded.generation)

    def on_fail() -> None:
        metrics.reloaded(False)

    # watchfiles logs every batch at INFO ("1 change detected"); our own lines say what it meant.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    env = os.environ
    discovery = settings.discovery
    reloader = None
    if discovery.kind == "file" and discovery.path is not None:
        reloader = ConfigReloader(discovery.path, runtime.live, env,
                                  listening=f"{settings.host}:{settings.port}", on_swap=on_swap,
                                  on_fail=on_fail)
    credentials = CredentialFiles(runtime.credentials)
    credentials.track(oauth_files(runtime.live.current.ruleset, env))
    if reloader is None and not credentials.paths:
        return
    watcher = _Watcher(reloader, credentials, runtime.live, env)

    stop = threading.Event()
    app.ctx.config_watch = _Handle(stop, asyncio.current_task())
    try:
        await watcher.run(stop)
    except asyncio.CancelledError:
        # Sanic cancels its tasks when told to stop: that is our stop too (the thread sees it
        # within one step). Ending normally keeps Sanic's "task was cancelled" warning away.
        stop.set()


@dataclass(frozen=True)
class _Handle:
    stop: threading.Event
    task: asyncio.Task[object] | None


async def stop_watching(app: Sanic[Any, Any]) -> None:
    """End this worker's watcher and wait for it; a ``before_server_stop`` listener.

    Sanic's own task shutdown cancels tasks without running the loop again, and a task still
    pending there keeps the worker from exiting: the watcher must be over before that.
    """
    handle: _Handle | None = getattr(app.ctx, "config_watch", None)
    if handle is None:
        return
    handle.stop.set()
    if handle.task is not None and not handle.task.done():
        done, _ = await asyncio.wait({handle.task}, timeout=STOP_TIMEOUT_S)
        if not done:
            handle.task.cancel()


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
