"""Glob languages: which names a pattern matches, compared exactly.

``covered(pattern, earlier)`` decides whether every name ``pattern`` matches is matched by
one of ``earlier`` (language inclusion, by walking the patterns as automata together);
``witness_names`` gives a couple of names a pattern matches, and ``tokens_match`` tries a name
without compiling a regex. The shadowing check uses them on model patterns, and on the
agent_type globs of routes' ``when``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from rules.patterns import ANY, STAR, CharClass, Token, tokenize

__all__ = ["FRESH", "covered", "tokens_match", "witness_names"]


class _Nfa:
    """The glob as a small automaton over lower-cased characters, for language inclusion."""

    __slots__ = ("accept", "tokens")

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
            elif t is ANY or (isinstance(t, CharClass) and t.contains(c)) or t == c:
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
            elif isinstance(t, CharClass):
                for c in t.chars:
                    points.update((ord(c), ord(c) + 1))
                for lo, hi in t.ranges:
                    points.update((ord(lo), ord(hi) + 1))
        return points


def covered(pattern: str, earlier: Sequence[str]) -> bool:
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


def tokens_match(tokens: Sequence[Token], name: str) -> bool:
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
            token is ANY or (token.contains(name[n]) if isinstance(token, CharClass) else token == name[n])
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
FRESH = "\ue000"


def witness_names(pattern: str, tokens: Callable[[], Sequence[Token]]) -> list[str]:
    """Up to two names ``pattern`` matches: each ``*`` empty, then one character.

    ``tokens`` gives the pattern's tokens; they are only needed for patterns with sets.
    """
    lowered = pattern.lower()
    if "[" not in lowered:  # the common case, without tokenizing
        first = lowered.replace("*", "").replace("?", FRESH)
        if "*" not in lowered:
            return [first]
        return [first, lowered.replace("*", FRESH).replace("?", FRESH)]
    parts: list[str] = []
    stars: list[int] = []  # where the "*" go in parts
    for t in tokens():
        if type(t) is str:
            parts.append(t)
        elif t is STAR:
            stars.append(len(parts))
            parts.append("")
        elif t is ANY:
            parts.append(FRESH)
        else:
            assert isinstance(t, CharClass)
            member = _member(t)
            if member is None:
                return []  # a set that matches nothing: the pattern matches nothing
            parts.append(member)
    first = "".join(parts)
    if not stars:
        return [first]
    for k in stars:
        parts[k] = FRESH
    return [first, "".join(parts)]


def _member(t: CharClass) -> str | None:
    """A character of the set, or None when it has none."""
    if not t.negated:
        if t.chars:
            return min(t.chars)
        return t.ranges[0][0] if t.ranges else None
    for c in (FRESH, "\ue001", "a", "0", "-"):
        if t.contains(c):
            return c
    return next((chr(c) for c in range(0x10FFFF) if t.contains(chr(c))), None)
