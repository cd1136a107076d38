"""The shadowing check: which patterns can never match because earlier ones cover them.

It runs at every load, so it is built to stay near-linear: two names each pattern matches
usually prove it is not covered, by a regex-free index lookup; the exact automaton check
(language inclusion of globs) runs only for the few patterns left.

Routes with ``when`` take part only where their conditions allow: an earlier pattern covers a
later one only if its route's conditions hold whenever the later route's do
(``conditions_cover``). Unions of conditional routes that together cover a later route (one
for ``main``, one for every other class) are not looked for: the check may miss such a
pattern, never report one that can match.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial

from rules.conditions import REQUEST_CLASSES, Conditions
from rules.inclusion import covered, tokens_match, witness_names
from rules.matching import Matcher
from rules.patterns import (
    ANY,
    GLOB_CHARS,
    STAR,
    CharClass,
    Token,
    is_glob,
    literal_prefix,
    literal_suffix,
    token_regex,
    tokenize,
)

__all__ = ["Shadowed", "conditions_cover", "find_shadowed"]

_EVERY_CLASS = frozenset(REQUEST_CLASSES)


@dataclass(frozen=True, slots=True)
class Shadowed:
    """A pattern that can never match because earlier patterns cover every name it matches."""

    route: int
    position: int  # index of the pattern in its route's match list
    pattern: str
    covered_by: tuple[tuple[int, str], ...]  # (route index, pattern) of the covering patterns


def conditions_cover(earlier: Conditions | None, later: Conditions | None) -> bool:
    """True when ``earlier`` holds for every request ``later`` holds for (None: no ``when``).

    Key by key: ``earlier``'s request classes include ``later``'s, its agent_type globs match
    every agent type ``later``'s do, and its server_tools is the same. A key ``later`` leaves
    out allows any value, which only an ``earlier`` without that key (or listing every request
    class) covers.
    """
    if earlier is None:
        return True
    classes = earlier.request_class
    if classes is not None and classes != _EVERY_CLASS and (
        later is None or later.request_class is None or not later.request_class <= classes
    ):
        return False
    if earlier.server_tools is not None and (later is None or later.server_tools != earlier.server_tools):
        return False
    if earlier.agent_type is not None:
        if later is None or later.agent_type is None:
            return False  # later also takes requests without an agent type, which earlier never does
        # Agent types each later glob matches, tried on earlier's compiled globs, settle most
        # pairs (a hundred routes on "claude-*", one per agent type) before the automaton.
        for glob in later.agent_type:
            if not all(earlier.agent_matches(name) for name in _glob_witnesses(glob)):
                return False
        return all(covered(glob, earlier.agent_type) for glob in later.agent_type)
    return True


@lru_cache(maxsize=4096)
def _glob_witnesses(glob: str) -> tuple[str, ...]:
    return tuple(witness_names(glob, lambda: tokenize(glob.lower())))


def find_shadowed(
    routes: Sequence[Sequence[str]], when: Sequence[Conditions | None] | None = None
) -> list[Shadowed]:
    """Every pattern that earlier patterns (of earlier routes, or earlier in its own list) cover.

    ``when`` holds each route's conditions (None, or no argument: no route has any).
    """
    flat: list[tuple[int, int, str]] = [
        (r, k, p) for r, patterns in enumerate(routes) for k, p in enumerate(patterns)
    ]
    ok = _eligibility(flat, when)
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
            if j is None:
                continue
            if ok is None or ok(j, i):
                found.append(Shadowed(route, position, pattern, ((flat[j][0], flat[j][2]),)))
                continue
            # The first earlier pattern taking the name applies to fewer requests than this
            # one: a later earlier pattern may still cover it, so look as for a glob.

        # A name the pattern matches that no earlier pattern takes proves it is not covered:
        # two such tries settle almost every pattern before the exact (costly) check.
        witnesses = witness_names(pattern, partial(index.tokens, i))
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
        earlier = sorted(j for j in candidates if j < i and (ok is None or ok(j, i)))
        if not _has_wildcard(pattern):
            # A pattern made only of sets (e.g. "glm-4.[57]") matches a finite set of names,
            # which exact names listed earlier may cover. They start with its prefix: a range
            # of the sorted list.
            lo = bisect.bisect_left(exact_names, (prefix,))
            while lo < len(exact_names) and exact_names[lo][0].startswith(prefix):
                name, j = exact_names[lo]
                if j < i and (ok is None or ok(j, i)) and tokens_match(index.tokens(i), name):
                    earlier.append(j)
                lo += 1
        if not earlier:
            continue
        # One pattern covering this one alone must match every witness. The first such is
        # named; looking no further keeps a run of identical patterns linear.
        single = next(
            (
                j
                for j in earlier
                if all(tokens_match(index.tokens(j), w) for w in witnesses)
                and covered(pattern, [flat[j][2]])
            ),
            None,
        )
        if single is not None:
            j = single
            found.append(Shadowed(route, position, pattern, ((flat[j][0], flat[j][2]),)))
        elif len(earlier) > 1 and covered(pattern, [flat[j][2] for j in earlier]):
            # Name only the patterns needed: drop each one the others can do without.
            needed = list(earlier)
            for j in earlier:
                rest = [k for k in needed if k != j]
                if covered(pattern, [flat[k][2] for k in rest]):
                    needed = rest
            found.append(
                Shadowed(route, position, pattern, tuple((flat[j][0], flat[j][2]) for j in needed))
            )
    return found


def _eligibility(
    flat: Sequence[tuple[int, int, str]], when: Sequence[Conditions | None] | None
) -> Callable[[int, int], bool] | None:
    """Whether flat pattern ``j`` may cover flat pattern ``i``, by their routes' conditions.

    None when no route has conditions: every earlier pattern may, as before ``when`` existed.
    """
    if when is None or all(w is None for w in when):
        return None
    # Which routes' agent_type globs match an agent type: a hundred routes on "claude-*", one
    # per agent type, would otherwise compare every pair of them.
    agents = Matcher([w.agent_type if w is not None and w.agent_type else () for w in when])
    possible: dict[int, frozenset[int] | None] = {}
    decided: dict[tuple[int, int], bool] = {}

    def agent_possible(later: int) -> frozenset[int] | None:
        """The routes whose agent globs match an agent type route ``later`` takes (None: any)."""
        if later not in possible:
            names = _glob_witnesses(when[later].agent_type[0])  # type: ignore[index,union-attr]
            possible[later] = frozenset(agents.find_all(names[0])) if names else None
        return possible[later]

    def ok(j: int, i: int) -> bool:
        key = (flat[j][0], flat[i][0])
        earlier, later = when[key[0]], when[key[1]]
        if key[0] == key[1] or earlier is None:
            return True  # a route's own patterns share its conditions; no `when` always holds
        if earlier.agent_type is not None:
            if later is None or later.agent_type is None:
                return False
            allowed = agent_possible(key[1])
            if allowed is not None and key[0] not in allowed:
                return False
        answer = decided.get(key)
        if answer is None:
            answer = decided[key] = conditions_cover(earlier, later)
        return answer

    return ok


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
            if not GLOB_CHARS.isdisjoint(p):
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
                if tokens_match(self.tokens(j), name):
                    return j
            return None
        rx = self._regexes.get(key)
        if rx is None:
            source = "|".join(f"({''.join(token_regex(t) for t in self.tokens(j))})" for j in bucket)
            rx = self._regexes[key] = re.compile(source, re.DOTALL)
        m = rx.fullmatch(name)
        if m is None:
            return None
        j = bucket[m.lastindex - 1]  # type: ignore[operator]
        return j if j < below else None


def _open_after_prefix(pattern: str) -> bool:
    """True when the token after the literal prefix is ``*``, ``?`` or a negated set."""
    tokens = tokenize(pattern.lower())
    first = next((t for t in tokens if not isinstance(t, str)), None)
    return first is STAR or first is ANY or (isinstance(first, CharClass) and first.negated)


def _has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern
