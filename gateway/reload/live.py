"""The config a worker is serving now, and what happened to the last attempt to change it.

A request reads ``live.current`` once at entry and uses that snapshot until it finishes;
a reload builds the next RuleSet off to the side and replaces the one reference. Nothing is
ever mutated in place, so no lock is needed and an in-flight stream finishes on the rules it
started with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rules.errors import ConfigError
from rules.model import RuleSet

__all__ = ["LiveConfig", "LoadedConfig", "ReloadFailure"]


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """One version of the rules, with where and when it came from."""

    ruleset: RuleSet
    generation: int  # 1 for the config loaded at start, +1 per applied reload
    loaded_at: float  # epoch seconds
    reason: str  # how it was found: "--config routes.toml", "embedded default: ..."


@dataclass(frozen=True, slots=True)
class ReloadFailure:
    """The last reload that could not be applied (the previous rules kept serving)."""

    message: str  # every problem, rendered `file:line: path: message`, one per line
    file: str | None
    line: int | None
    path: str
    at: float  # epoch seconds

    @classmethod
    def from_error(cls, error: ConfigError) -> ReloadFailure:
        return cls(error.render(), error.file, error.line, error.path, time.time())


class LiveConfig:
    """The current LoadedConfig of this worker and the last reload failure, if any."""

    __slots__ = ("current", "last_error")

    def __init__(self, ruleset: RuleSet, reason: str) -> None:
        self.current = LoadedConfig(ruleset, 1, time.time(), reason)
        self.last_error: ReloadFailure | None = None

    def swap(self, ruleset: RuleSet, reason: str | None = None) -> LoadedConfig:
        """Serve ``ruleset`` from now on; clears the last error."""
        old = self.current
        self.current = LoadedConfig(ruleset, old.generation + 1, time.time(), reason or old.reason)
        self.last_error = None
        return self.current

    def fail(self, error: ConfigError) -> ReloadFailure:
        """Record a reload that could not be applied; the current rules stay."""
        self.last_error = ReloadFailure.from_error(error)
        return self.last_error

    def clear_error(self) -> None:
        """Forget the last failure without a new generation: the file is back to the rules in use."""
        self.last_error = None
