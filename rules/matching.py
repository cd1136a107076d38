"""Model-name patterns: compiling, first-match resolution, and the shadowing check.

Patterns are case-insensitive globs over the whole model name: ``*`` (any run of characters),
``?`` (one character), ``[abc]`` / ``[a-z]`` / ``[!abc]`` (one character of a set). A pattern
without those characters is an exact name.

Resolution is on every request, so it is built for speed: exact names sit in a dict; globs
are grouped by literal prefix (or, without one, by literal suffix), each group joined into one
regular expression whose alternatives keep route order (so the regex engine, in C, finds the
group's first matching route), compiled on first use; and answers are cached per name.

The shadowing check runs at every load, so it is built to stay near-linear: two names each
pattern matches usually prove it is not covered, by a regex-free index lookup; the exact
automaton check runs only for the few patterns left.
"""

from __future__ import annotations

import bisect
import re
import sys
from dataclasses import dataclass
from typing import Callable, Sequence, Union

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


def literal_suffix(pattern: str) -> str:
    """The literal characters after the last glob token, lower-cased (an unclosed "[" is literal)."""
    tokens = tokenize(pattern.lower())
    k = len(tokens)
    while k > 0 and isinstance(tokens[k - 1], str):
        k -= 1
    return "".join(tokens[k:])  # type: ignore[arg-type]


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
    """The globs sharing one literal prefix (or suffix), as one lazily compiled regex."""

    __slots__ = ("patterns", "routes", "_regex")

    def __init__(self, patterns: tuple[str, ...], routes: tuple[int, ...]) -> None:
        self.patterns = patterns
        self.routes = routes  # route index of each alternative, in order
        self._regex: re.Pattern[str] | None = None

    def fullmatch(self, name: str) -> re.Match[str] | None:
        if self._regex is None:
            source = "|".join(f"({glob_regex(p)})" for p in self.patterns)
            self._regex = re.compile(source, re.DOTALL)
        return self._regex.fullmatch(name)


class Matcher:
    """First-match resolution of a model name over the routes' pattern lists.

    ``Matcher([("a", "b*"), ("*",)]).resolve("B1")`` is 0: the index of the first route with a
    matching pattern, or -1 when none matches.
    """

    __slots__ = (
        "_exact",
        "_buckets",
        "_prefix_lengths",
        "_suffix_buckets",
        "_suffix_lengths",
        "_cache",
    )

    def __init__(self, routes: Sequence[Sequence[str]]) -> None:
        self._exact: dict[str, int] = {}
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
                if not _GLOB_CHARS.isdisjoint(pattern):  # is_glob, inlined: a thousand calls
                    prefix = literal_prefix(pattern)
                    group = (
                        grouped.setdefault(prefix, [])
                        if prefix
                        else by_suffix.setdefault(literal_suffix(pattern), [])
                    )
                    group.append((index, pattern))
                else:
                    self._exact.setdefault(pattern.lower(), index)
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


def _buckets(grouped: dict[str, list[tuple[int, str]]]) -> dict[str, _Bucket]:
    return {
        key: _Bucket(tuple(p for _, p in entries), tuple(i for i, _ in entries))
        for key, entries in grouped.items()
    }


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


def find_shadowed(routes: Sequence[Sequence[str]]) -> list[Shadowed]:
    """Every pattern that earlier patterns (of earlier routes, or earlier in its own list) cover."""
    flat: list[tuple[int, int, str]] = [
        (r, k, p) for r, patterns in enumerate(routes) for k, p in enumerate(patterns)
    ]
    index = _FlatIndex([p for _, _, p in flat])
    # Globs indexed by literal prefix: two patterns can only overlap when one prefix starts
    # the other, which keeps this near-linear for the thousand-route files people generate.
    by_prefix: dict[str, list[int]] = dict(index.prefix)
    prefixless = index.prefixless()
    if prefixless:
        by_prefix[""] = prefixless
    prefixes = sorted(by_prefix)
    exact_names = sorted((p.lower(), i) for i, (_, _, p) in enumerate(flat) if not is_glob(p))

    found: list[Shadowed] = []
    for i, (route, position, pattern) in enumerate(flat):
        if not is_glob(pattern):
            j = index.first_match(pattern.lower(), before=i)
            if j is not None:
                found.append(Shadowed(route, position, pattern, ((flat[j][0], flat[j][2]),)))
            continue

        # A name the pattern matches that no earlier pattern takes proves it is not covered:
        # two such tries settle almost every pattern before the exact (costly) check.
        witnesses = _witnesses(pattern, lambda: index.tokens(i))
        if not all(index.first_match(w, before=i) is not None for w in witnesses):
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
            # which exact names listed earlier may cover. They start with its prefix: a range
            # of the sorted list.
            lo = bisect.bisect_left(exact_names, (prefix,))
            while lo < len(exact_names) and exact_names[lo][0].startswith(prefix):
                name, j = exact_names[lo]
                if j < i and _tokens_match(index.tokens(i), name):
                    earlier.append(j)
                lo += 1
        if not earlier:
            continue
        # One pattern covering this one alone must match every witness.
        singles = [
            j
            for j in earlier
            if all(_tokens_match(index.tokens(j), w) for w in witnesses)
            and _covered(pattern, [flat[j][2]])
        ]
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


class _FlatIndex:
    """Which pattern of a flat list first matches a name, without compiling a regex.

    A file's shadowing check runs once per load, on names no request may ever send, so
    compiling the Matcher's bucket regexes for it (a tenth of a millisecond each) would cost
    more than the whole check. Patterns are bucketed as the Matcher does (exact names in a
    dict; globs by literal prefix, or by literal suffix when they have no prefix) and matched
    token by token; a big bucket alone is compiled, once, as one regex.
    """

    _BIG = 16  # buckets with more globs than this are matched by one compiled regex

    def __init__(self, patterns: Sequence[str]) -> None:
        self._patterns = patterns
        self._tokens: dict[int, list[Token]] = {}
        self._exact: dict[str, int] = {}
        self.prefix: dict[str, list[int]] = {}  # literal prefix -> glob indices, ascending
        self._suffix: dict[str, list[int]] = {}
        for i, p in enumerate(patterns):
            if not _GLOB_CHARS.isdisjoint(p):
                prefix = literal_prefix(p)
                if prefix:
                    self.prefix.setdefault(prefix, []).append(i)
                else:
                    self._suffix.setdefault(literal_suffix(p), []).append(i)
            else:
                self._exact.setdefault(p.lower(), i)
        self._prefix_lengths = sorted({len(k) for k in self.prefix})
        self._suffix_lengths = sorted({len(k) for k in self._suffix})
        self._regexes: dict[tuple[bool, str], re.Pattern[str]] = {}

    def tokens(self, i: int) -> list[Token]:
        """Pattern ``i`` tokenized (lower-cased), computed once, on first use."""
        tokens = self._tokens.get(i)
        if tokens is None:
            tokens = self._tokens[i] = tokenize(self._patterns[i].lower())
        return tokens

    def prefixless(self) -> list[int]:
        """The globs without a literal prefix, ascending."""
        return sorted(j for bucket in self._suffix.values() for j in bucket)

    def first_match(self, name: str, *, before: int) -> int | None:
        """The smallest pattern index below ``before`` matching ``name`` (lower-cased), or None."""
        best = min(self._exact.get(name, before), before)
        size = len(name)
        for by_suffix, buckets, lengths in (
            (False, self.prefix, self._prefix_lengths),
            (True, self._suffix, self._suffix_lengths),
        ):
            for length in lengths:
                if length > size:
                    break
                key = name[size - length :] if by_suffix else name[:length]
                bucket = buckets.get(key)
                if bucket is None or bucket[0] >= best:
                    continue
                hit = self._first_in(bucket, (by_suffix, key), name, best)
                if hit is not None:
                    best = hit
        return best if best < before else None

    def _first_in(self, bucket: list[int], key: tuple[bool, str], name: str, below: int) -> int | None:
        if len(bucket) <= self._BIG:
            for j in bucket:
                if j >= below:
                    return None
                if _tokens_match(self.tokens(j), name):
                    return j
            return None
        rx = self._regexes.get(key)
        if rx is None:
            source = "|".join(f"({''.join(_token_regex(t) for t in self.tokens(j))})" for j in bucket)
            rx = self._regexes[key] = re.compile(source, re.DOTALL)
        m = rx.fullmatch(name)
        if m is None:
            return None
        j = bucket[m.lastindex - 1]  # type: ignore[operator]
        return j if j < below else None


def _tokens_match(tokens: Sequence[Token], name: str) -> bool:
    """True when the lower-cased ``name`` matches the pattern ``tokens`` (glob_regex's meaning)."""
    t = n = 0
    star = -1  # token index of the last "*" seen, and where in the name it started
    star_n = 0
    end = len(tokens)
    while n < len(name):
        token = tokens[t] if t < end else None
        if token is STAR:
            star, star_n = t, n
            t += 1
        elif token is not None and (
            token is ANY or (token.contains(name[n]) if isinstance(token, _Class) else token == name[n])
        ):
            t += 1
            n += 1
        elif star >= 0:
            # Let the last "*" take one more character, and retry what follows it.
            star_n += 1
            t, n = star + 1, star_n
        else:
            return False
    while t < end and tokens[t] is STAR:
        t += 1
    return t == end


# Stands for "a character no pattern names" in witness names: private use, so caseless.
_FRESH = "\ue000"


def _witnesses(pattern: str, tokens: Callable[[], Sequence[Token]]) -> list[str]:
    """Up to two names ``pattern`` matches: each ``*`` empty, then one character.

    ``tokens`` gives the pattern's tokens; they are only needed for patterns with sets.
    """
    lowered = pattern.lower()
    if "[" not in lowered:  # the common case, without tokenizing
        first = lowered.replace("*", "").replace("?", _FRESH)
        if "*" not in lowered:
            return [first]
        return [first, lowered.replace("*", _FRESH).replace("?", _FRESH)]
    parts: list[str] = []
    stars: list[int] = []  # where the "*" go in parts
    for t in tokens():
        if type(t) is str:
            parts.append(t)
        elif t is STAR:
            stars.append(len(parts))
            parts.append("")
        elif t is ANY:
            parts.append(_FRESH)
        else:
            assert isinstance(t, _Class)
            member = _member(t)
            if member is None:
                return []  # a set that matches nothing: the pattern matches nothing
            parts.append(member)
    first = "".join(parts)
    if not stars:
        return [first]
    for k in stars:
        parts[k] = _FRESH
    return [first, "".join(parts)]


def _member(t: _Class) -> str | None:
    """A character of the set, or None when it has none."""
    if not t.negated:
        if t.chars:
            return min(t.chars)
        return t.ranges[0][0] if t.ranges else None
    for c in (_FRESH, "\ue001", "a", "0", "-"):
        if t.contains(c):
            return c
    return next((chr(c) for c in range(0x10FFFF) if t.contains(chr(c))), None)


def _open_after_prefix(pattern: str) -> bool:
    """True when the token after the literal prefix is ``*``, ``?`` or a negated set."""
    tokens = tokenize(pattern.lower())
    first = next((t for t in tokens if not isinstance(t, str)), None)
    return first is STAR or first is ANY or (isinstance(first, _Class) and first.negated)


def _has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern
