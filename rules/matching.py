"""Model-name patterns: compiling, first-match resolution, and the shadowing check.

Patterns are case-insensitive globs over the whole model name: ``*`` (any run of characters),
``?`` (one character), ``[abc]`` / ``[a-z]`` / ``[!abc]`` (one character of a set). A pattern
without those characters is an exact name.

Resolution is on every request, so it is built for speed: exact names sit in a dict, all
glob patterns are joined into one regular expression whose alternatives keep route order (so
the regex engine, in C, finds the first matching route), and answers are cached per name.
"""

from __future__ import annotations

import bisect
import re
import sys
from dataclasses import dataclass
from typing import Sequence, Union

_GLOB_CHARS = frozenset("*?[")
_CACHE_LIMIT = 4096


# --- tokens -------------------------------------------------------------------------------

class _Star:
    __slots__ = ()


class _Any:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Class:
    chars: frozenset[str]
    ranges: tuple[tuple[str, str], ...]
    negated: bool

    def contains(self, c: str) -> bool:
        hit = c in self.chars or any(lo <= c <= hi for lo, hi in self.ranges)
        return hit != self.negated


STAR = _Star()
ANY = _Any()
Token = Union[str, _Star, _Any, _Class]


def is_glob(pattern: str) -> bool:
    """True when the pattern has glob characters (``*``, ``?``, ``[``)."""
    return not _GLOB_CHARS.isdisjoint(pattern)


def tokenize(pattern: str) -> list[Token]:
    """Split a (lower-cased) pattern into literal characters and glob tokens, as fnmatch reads them."""
    tokens: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not tokens or tokens[-1] is not STAR:  # "**" means the same as "*"
                tokens.append(STAR)
        elif c == "?":
            tokens.append(ANY)
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":  # a "]" first in the set is a literal
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: "[" is a literal, as in fnmatch
                tokens.append("[")
                continue
            body = pattern[i:j]
            i = j + 1
            negated = body.startswith("!")
            if negated:
                body = body[1:]
            chars: set[str] = set()
            ranges: list[tuple[str, str]] = []
            k = 0
            while k < len(body):
                if k + 2 < len(body) and body[k + 1] == "-":
                    lo, hi = body[k], body[k + 2]
                    if lo <= hi:
                        ranges.append((lo, hi))
                    k += 3
                else:
                    chars.add(body[k])
                    k += 1
            tokens.append(_Class(frozenset(chars), tuple(ranges), negated))
        else:
            tokens.append(c)
    return tokens


def is_catch_all(pattern: str) -> bool:
    """True for ``*`` (or ``**``...): a pattern that matches every model name."""
    return bool(pattern) and set(pattern) == {"*"}


def literal_prefix(pattern: str) -> str:
    """The characters before the first glob character, lower-cased."""
    p = pattern.lower()
    for i, c in enumerate(p):
        if c in _GLOB_CHARS:
            return p[:i]
    return p


def _token_regex(token: Token) -> str:
    if token is STAR:
        return ".*"
    if token is ANY:
        return "."
    if isinstance(token, _Class):
        inner = "".join(re.escape(c) for c in sorted(token.chars))
        inner += "".join(f"{re.escape(lo)}-{re.escape(hi)}" for lo, hi in token.ranges)
        if not inner:
            # "[!]"-like sets: an empty set matches nothing; its negation matches anything
            return "." if token.negated else "(?!)"
        return f"[{'^' if token.negated else ''}{inner}]"
    assert isinstance(token, str)
    return re.escape(token)


def glob_regex(pattern: str) -> str:
    """The regular expression (without anchors) for one pattern, matching lower-cased names."""
    return "".join(_token_regex(t) for t in tokenize(pattern.lower()))


# --- resolution ---------------------------------------------------------------------------

class _Bucket:
    """The globs sharing one literal prefix, as one lazily compiled regex."""

    __slots__ = ("source", "routes", "_regex")

    def __init__(self, source: str, routes: tuple[int, ...]) -> None:
        self.source = source
        self.routes = routes  # route index of each alternative, in order
        self._regex: re.Pattern[str] | None = None

    def fullmatch(self, name: str) -> re.Match[str] | None:
        if self._regex is None:
            self._regex = re.compile(self.source, re.DOTALL)
        return self._regex.fullmatch(name)


class Matcher:
    """First-match resolution of a model name over the routes' pattern lists.

    ``Matcher([("a", "b*"), ("*",)]).resolve("B1")`` is 0: the index of the first route with a
    matching pattern, or -1 when none matches.
    """

    __slots__ = ("_exact", "_buckets", "_prefix_lengths", "_cache")

    def __init__(self, routes: Sequence[Sequence[str]]) -> None:
        self._exact: dict[str, int] = {}
        # Globs grouped by literal prefix ("claude-haiku-" for "claude-haiku-*"): a name can
        # only match globs whose prefix starts it, so resolution looks at a handful of
        # buckets instead of every glob. Each bucket is one regex whose alternatives keep
        # route order, so the regex engine (in C) finds the bucket's first matching route.
        grouped: dict[str, list[tuple[int, str]]] = {}
        for index, patterns in enumerate(routes):
            for pattern in patterns:
                if is_glob(pattern):
                    grouped.setdefault(literal_prefix(pattern), []).append(
                        (index, glob_regex(pattern))
                    )
                else:
                    self._exact.setdefault(pattern.lower(), index)
        # Compiled on first use: a generated file with a thousand prefixes should not pay a
        # thousand regex compilations at every reload for buckets no request touches.
        self._buckets: dict[str, _Bucket] = {
            prefix: _Bucket("|".join(f"({rx})" for _, rx in entries), tuple(i for i, _ in entries))
            for prefix, entries in grouped.items()
        }
        self._prefix_lengths = sorted({len(p) for p in self._buckets})
        self._cache: dict[str, int] = {}

    def resolve(self, model: str) -> int:
        """The index of the first route matching ``model``, or -1."""
        hit = self._cache.get(model)
        if hit is not None:
            return hit
        name = model.lower()
        found = self._exact.get(name, -1)
        buckets = self._buckets
        for length in self._prefix_lengths:
            if length > len(name):
                break
            bucket = buckets.get(name[:length])
            if bucket is None:
                continue
            m = bucket.fullmatch(name)
            if m is not None:
                index = bucket.routes[m.lastindex - 1]  # type: ignore[operator]
                if found < 0 or index < found:
                    found = index
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # model names are few; a flood of distinct ones must not grow memory
        self._cache[model] = found
        return found


# --- shadowing ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Shadowed:
    """A pattern that can never match because earlier patterns cover every name it matches."""

    route: int
    position: int  # index of the pattern in its route's match list
    pattern: str
    covered_by: tuple[tuple[int, str], ...]  # (route index, pattern) of the covering patterns


class _Nfa:
    """The glob as a small automaton over lower-cased characters, for language inclusion."""

    __slots__ = ("tokens", "accept")

    def __init__(self, pattern: str) -> None:
        self.tokens = tokenize(pattern.lower())
        self.accept = len(self.tokens)

    def closure(self, states: set[int]) -> set[int]:
        out = set(states)
        stack = list(states)
        while stack:
            s = stack.pop()
            if s < self.accept and self.tokens[s] is STAR and s + 1 not in out:
                out.add(s + 1)
                stack.append(s + 1)
        return out

    def step(self, states: set[int], c: str) -> set[int]:
        nxt: set[int] = set()
        for s in states:
            if s >= self.accept:
                continue
            t = self.tokens[s]
            if t is STAR:
                nxt.add(s)
            elif t is ANY or (isinstance(t, _Class) and t.contains(c)) or t == c:
                nxt.add(s + 1)
        return self.closure(nxt)

    def boundaries(self) -> set[int]:
        """Code points where this pattern may start treating characters differently.

        Each character the pattern names starts an interval, and so does the one after it
        (after a range, the one after its end): all characters of an interval are alike.
        """
        points: set[int] = set()
        for t in self.tokens:
            if isinstance(t, str):
                points.update((ord(t), ord(t) + 1))
            elif isinstance(t, _Class):
                for c in t.chars:
                    points.update((ord(c), ord(c) + 1))
                for lo, hi in t.ranges:
                    points.update((ord(lo), ord(hi) + 1))
        return points


def _covered(pattern: str, earlier: Sequence[str]) -> bool:
    """True when every name ``pattern`` matches is matched by one of ``earlier``."""
    a = _Nfa(pattern)
    bs = [_Nfa(p) for p in earlier]
    # Between two consecutive boundaries, every pattern treats all characters alike, so one
    # character stands for each interval: exact even for wide ranges such as [\x00-\uffff].
    points = {0}.union(a.boundaries(), *(b.boundaries() for b in bs))
    alphabet = [chr(p) for p in sorted(points) if p <= sys.maxunicode]
    start = (frozenset(a.closure({0})), tuple(frozenset(b.closure({0})) for b in bs))
    seen = {start}
    todo = [start]
    while todo:
        a_states, b_states = todo.pop()
        if a.accept in a_states and not any(b.accept in s for b, s in zip(bs, b_states)):
            return False
        for c in alphabet:
            na = frozenset(a.step(set(a_states), c))
            if not na:
                continue
            nb = tuple(frozenset(b.step(set(s), c)) for b, s in zip(bs, b_states))
            state = (na, nb)
            if state not in seen:
                seen.add(state)
                todo.append(state)
    return True


def find_shadowed(routes: Sequence[Sequence[str]], matcher: Matcher | None = None) -> list[Shadowed]:
    """Every pattern that earlier patterns (of earlier routes, or earlier in its own list) cover.

    ``matcher``, when given, must be ``Matcher(routes)`` (the RuleSet's own, to build it once).
    """
    whole = matcher if matcher is not None else Matcher(routes)
    flat: list[tuple[int, int, str]] = [
        (r, k, p) for r, patterns in enumerate(routes) for k, p in enumerate(patterns)
    ]
    # Globs indexed by literal prefix: two patterns can only overlap when one prefix starts
    # the other, which keeps this near-linear for the thousand-route files people generate.
    by_prefix: dict[str, list[int]] = {}
    for i, (_, _, p) in enumerate(flat):
        if is_glob(p):
            by_prefix.setdefault(literal_prefix(p), []).append(i)
    prefixes = sorted(by_prefix)
    exact_names = [(i, p.lower()) for i, (_, _, p) in enumerate(flat) if not is_glob(p)]

    found: list[Shadowed] = []
    for i, (route, position, pattern) in enumerate(flat):
        if not is_glob(pattern):
            first = whole.resolve(pattern)
            if first < route:
                covering = next(p for p in routes[first] if _matches(p, pattern))
                found.append(Shadowed(route, position, pattern, ((first, covering),)))
                continue
            same = [p for p in routes[route][:position] if _matches(p, pattern)]
            if same:
                found.append(Shadowed(route, position, pattern, ((route, same[0]),)))
            continue

        prefix = literal_prefix(pattern)
        candidates: set[int] = set()
        for cut in range(len(prefix) + 1):
            candidates.update(by_prefix.get(prefix[:cut], ()))
        if not _open_after_prefix(pattern):
            # Longer prefixes can only help (together) when the character after this
            # pattern's prefix is constrained: "a[bc]*" is covered by "ab*" and "ac*", but
            # "a*" matches "a" followed by characters no longer prefix names.
            lo = bisect.bisect_right(prefixes, prefix)
            while lo < len(prefixes) and prefixes[lo].startswith(prefix):
                candidates.update(by_prefix[prefixes[lo]])
                lo += 1
        earlier = sorted(j for j in candidates if j < i)
        if not _has_wildcard(pattern):
            # A pattern made only of sets (e.g. "glm-4.[57]") matches a finite set of names,
            # which exact names listed earlier may cover.
            rx = re.compile(glob_regex(pattern), re.DOTALL)
            earlier += [j for j, name in exact_names if j < i and rx.fullmatch(name)]
        if not earlier:
            continue
        singles = [j for j in earlier if _covered(pattern, [flat[j][2]])]
        if singles:
            j = singles[0]
            found.append(Shadowed(route, position, pattern, ((flat[j][0], flat[j][2]),)))
        elif len(earlier) > 1 and _covered(pattern, [flat[j][2] for j in earlier]):
            # Name only the patterns needed: drop each one the others can do without.
            needed = list(earlier)
            for j in earlier:
                rest = [k for k in needed if k != j]
                if _covered(pattern, [flat[k][2] for k in rest]):
                    needed = rest
            found.append(
                Shadowed(route, position, pattern, tuple((flat[j][0], flat[j][2]) for j in needed))
            )
    return found


def _open_after_prefix(pattern: str) -> bool:
    """True when the token after the literal prefix is ``*``, ``?`` or a negated set."""
    tokens = tokenize(pattern.lower())
    first = next((t for t in tokens if not isinstance(t, str)), None)
    return first is STAR or first is ANY or (isinstance(first, _Class) and first.negated)


def _has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def _matches(pattern: str, name: str) -> bool:
    return re.fullmatch(glob_regex(pattern), name.lower(), re.DOTALL) is not None
