"""Model-name patterns: case-insensitive globs over the whole name, as tokens and as regexes.

``*`` (any run of characters), ``?`` (one character), ``[abc]`` / ``[a-z]`` / ``[!abc]`` (one
character of a set). A pattern without those characters is an exact name. Resolution
(``rules.matching``) and the shadowing check (``rules.shadowing``) both read patterns through
this module, so the two can never disagree on what a pattern means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ANY",
    "CharClass",
    "GLOB_CHARS",
    "STAR",
    "Token",
    "glob_regex",
    "is_catch_all",
    "is_glob",
    "literal_prefix",
    "literal_suffix",
    "token_regex",
    "tokenize",
]

GLOB_CHARS = frozenset("*?[")


# --- tokens -------------------------------------------------------------------------------

class _Star:
    __slots__ = ()


class _Any:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class CharClass:
    chars: frozenset[str]
    ranges: tuple[tuple[str, str], ...]
    negated: bool

    def contains(self, c: str) -> bool:
        hit = c in self.chars or any(lo <= c <= hi for lo, hi in self.ranges)
        return hit != self.negated


STAR = _Star()
ANY = _Any()
Token = str | _Star | _Any | CharClass


def is_glob(pattern: str) -> bool:
    """True when the pattern has glob characters (``*``, ``?``, ``[``)."""
    return not GLOB_CHARS.isdisjoint(pattern)


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
            tokens.append(CharClass(frozenset(chars), tuple(ranges), negated))
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
        if c in GLOB_CHARS:
            return p[:i]
    return p


def literal_suffix(pattern: str) -> str:
    """The literal characters after the last glob token, lower-cased (an unclosed "[" is literal)."""
    tokens = tokenize(pattern.lower())
    k = len(tokens)
    while k > 0 and isinstance(tokens[k - 1], str):
        k -= 1
    return "".join(tokens[k:])  # type: ignore[arg-type]


def token_regex(token: Token) -> str:
    if token is STAR:
        return ".*"
    if token is ANY:
        return "."
    if isinstance(token, CharClass):
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
    return "".join(token_regex(t) for t in tokenize(pattern.lower()))

