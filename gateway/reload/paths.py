"""Which paths live reload watches: the config file, its symlinks, and the OAuth files in use.

Directories are watched, not files: editors replace a file by renaming a new one over it, and
a Kubernetes ConfigMap swaps a symlink (``routes.toml -> ..data/routes.toml``, ``..data ->
..2024_01_01_00_00_00.1``). Which paths matter is worked out again after every change, by
following the symlinks from the configured path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from watchfiles import Change

from gateway.upstream.credentials import oauth_path
from rules.model import RuleSet

__all__ = ["WatchPlan", "oauth_files", "watched_paths"]

# More symlinks than this on one path is a loop.
_MAX_LINKS = 40


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
