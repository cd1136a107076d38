"""First-match resolution of a model name over the routes' pattern lists (on every request).

Built for speed: exact names sit in a dict; globs are grouped by literal prefix (or, without
one, by literal suffix), each group joined into one regular expression whose alternatives keep
route order (so the regex engine, in C, finds the group's first matching route), compiled on
first use; and answers are cached per name. What a pattern means is ``rules.patterns``; which
patterns can never match is ``rules.shadowing``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rules.patterns import GLOB_CHARS, glob_regex, literal_prefix, literal_suffix

__all__ = ["Matcher"]

_CACHE_LIMIT = 4096


class _Bucket:
    """The globs sharing one literal prefix (or suffix), as one lazily compiled regex."""

    __slots__ = ("_each", "_regex", "patterns", "routes")

    def __init__(self, patterns: tuple[str, ...], routes: tuple[int, ...]) -> None:
        self.patterns = patterns
        self.routes = routes  # route index of each alternative, in order
        self._regex: re.Pattern[str] | None = None
        self._each: tuple[tuple[re.Pattern[str], tuple[int, ...]], ...] | None = None

    def fullmatch(self, name: str) -> re.Match[str] | None:
        if self._regex is None:
            source = "|".join(f"({glob_regex(p)})" for p in self.patterns)
            self._regex = re.compile(source, re.DOTALL)
        return self._regex.fullmatch(name)

    def every_match(self, name: str) -> list[int]:
        """The route index of every alternative that matches ``name``, not only the first."""
        if self._each is None:
            # One regex per distinct pattern: conditional routes often share one ("claude-*"
            # for each of a hundred agent types).
            grouped: dict[str, list[int]] = {}
            for pattern, route in zip(self.patterns, self.routes):
                grouped.setdefault(pattern.lower(), []).append(route)
            self._each = tuple((re.compile(glob_regex(p), re.DOTALL), tuple(r)) for p, r in grouped.items())
        return [route for regex, routes in self._each if regex.fullmatch(name) for route in routes]


class Matcher:
    """First-match resolution of a model name over the routes' pattern lists.

    ``Matcher([("a", "b*"), ("*",)]).resolve("B1")`` is 0: the index of the first route with a
    matching pattern, or -1 when none matches.
    """

    __slots__ = (
        "_buckets",
        "_cache",
        "_exact",
        "_exact_more",
        "_prefix_lengths",
        "_suffix_buckets",
        "_suffix_lengths",
    )

    def __init__(self, routes: Sequence[Sequence[str]]) -> None:
        self._exact: dict[str, int] = {}
        # Later routes listing an exact name an earlier one has too: only find_all needs them.
        self._exact_more: dict[str, list[int]] = {}
        # Globs grouped by literal prefix ("claude-haiku-" for "claude-haiku-*"): a name can
        # only match globs whose prefix starts it, so resolution looks at a handful of
        # buckets instead of every glob. Each bucket is one regex whose alternatives keep
        # route order, so the regex engine (in C) finds the bucket's first matching route.
        # Globs without a literal prefix ("*-tag-7", "*haiku*") are grouped by their literal
        # suffix instead, the same way from the other end: otherwise every lookup would run
        # them all, each alternative scanning the whole name.
        grouped: dict[str, list[tuple[int, str]]] = {}
        by_suffix: dict[str, list[tuple[int, str]]] = {}
        for index, patterns in enumerate(routes):
            for pattern in patterns:
                if not GLOB_CHARS.isdisjoint(pattern):  # is_glob, inlined: a thousand calls
                    prefix = literal_prefix(pattern)
                    group = (
                        grouped.setdefault(prefix, [])
                        if prefix
                        else by_suffix.setdefault(literal_suffix(pattern), [])
                    )
                    group.append((index, pattern))
                else:
                    name = pattern.lower()
                    if self._exact.setdefault(name, index) != index:
                        self._exact_more.setdefault(name, []).append(index)
        # Compiled on first use: a generated file with a thousand prefixes should not pay a
        # thousand regex compilations at every reload for buckets no request touches.
        self._buckets = _buckets(grouped)
        self._prefix_lengths = sorted({len(p) for p in self._buckets})
        self._suffix_buckets = _buckets(by_suffix)
        self._suffix_lengths = sorted({len(s) for s in self._suffix_buckets})
        self._cache: dict[str, int] = {}

    def resolve(self, model: str) -> int:
        """The index of the first route matching ``model``, or -1."""
        hit = self._cache.get(model)
        if hit is not None:
            return hit
        found = self.find(model)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # model names are few; a flood of distinct ones must not grow memory
        self._cache[model] = found
        return found

    def find(self, model: str) -> int:
        """``resolve`` without the cache (for checks that try many names once)."""
        name = model.lower()
        size = len(name)
        found = self._exact.get(name, -1)
        for buckets, lengths, from_end in (
            (self._buckets, self._prefix_lengths, False),
            (self._suffix_buckets, self._suffix_lengths, True),
        ):
            for length in lengths:
                if length > size:
                    break
                bucket = buckets.get(name[size - length :] if from_end else name[:length])
                # A bucket's alternatives are in route order: skip it if its first comes too late.
                if bucket is None or 0 <= found < bucket.routes[0]:
                    continue
                m = bucket.fullmatch(name)
                if m is not None:
                    index = bucket.routes[m.lastindex - 1]  # type: ignore[operator]
                    if found < 0 or index < found:
                        found = index
        return found

    def find_all(self, model: str) -> list[int]:
        """The index of every route matching ``model``, ascending, without the cache.

        For conditional routes (``when``): a name's first matching route may not apply to a
        request, so the ones after it are needed too.
        """
        name = model.lower()
        size = len(name)
        found: set[int] = set()
        first = self._exact.get(name)
        if first is not None:
            found.add(first)
            found.update(self._exact_more.get(name, ()))
        for buckets, lengths, from_end in (
            (self._buckets, self._prefix_lengths, False),
            (self._suffix_buckets, self._suffix_lengths, True),
        ):
            for length in lengths:
                if length > size:
                    break
                bucket = buckets.get(name[size - length :] if from_end else name[:length])
                if bucket is not None:
                    found.update(bucket.every_match(name))
        return sorted(found)


def _buckets(grouped: dict[str, list[tuple[int, str]]]) -> dict[str, _Bucket]:
    return {
        key: _Bucket(tuple(p for _, p in entries), tuple(i for i, _ in entries))
        for key, entries in grouped.items()
    }

