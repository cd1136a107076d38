"""Applying a change of routes.toml to one worker, and noticing changed OAuth files.

A version of the file is looked at once: identical bytes do nothing; otherwise it is parsed,
checked and compiled off the event loop, and swapped in as one reference (``LiveConfig``). A
broken version is logged once and kept in ``live.last_error`` while the last good rules serve.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from gateway.reload.changes import describe_changes, restart_only_changes
from gateway.reload.live import LiveConfig, LoadedConfig
from gateway.timefmt import human
from gateway.upstream.credentials import CredentialResolver, KeyUnavailable
from rules.errors import ConfigError, Problem
from rules.loader import load_bytes
from rules.model import RuleSet

__all__ = ["ConfigReloader", "CredentialFiles"]

log = logging.getLogger("gateway")

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
                "config: %s changed, but host, port, max_body_mb and ledger only apply when the gateway "
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
        until = human(token.expires_at_ms / 1000)
        if token.expired(time.time() * 1000):
            return logging.WARNING, f"the login in it expired at {until}; run `claude` to renew it"
        return logging.INFO, f"a login valid until {until}"
