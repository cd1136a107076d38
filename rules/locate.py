"""Config paths and the lines they sit on in a TOML file.

tomllib gives values, not positions, so a schema or semantic error found in the parsed document
(``route[2].to[0].provider``) is placed in the source by a small scanner of the TOML text. It
reads only structure (table headers, arrays of tables counted per index, dotted keys, inline
tables, arrays over several lines) and skips strings and comments, so a ``[`` or ``#`` inside a
string does not confuse it. It runs on text tomllib has already accepted::

    lines = LineMap('[[route]]\\nmatch = "*"\\nto = [{ provider = "zai" }]\\n')
    lines.line_of(("route", 0, "to", 0, "provider"))   # 3
    lines.line_of(("route", 0, "name"))                # 1: the innermost thing that exists
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from rules.redact import looks_secret, secret_prefix

__all__ = ["ConfigPath", "LineMap", "format_path", "scan"]

PathPart = str | int
ConfigPath = tuple[PathPart, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "e": "\x1b", '"': '"', "\\": "\\"}


def format_path(path: Sequence[PathPart]) -> str:
    """``("route", 2, "to", 0, "provider")`` -> ``route[2].to[0].provider``.

    Keys that are not bare TOML keys are quoted, so the path reads as the file would spell it;
    a key that looks like a credential (pasted as a table name) is cut to ``"sk-ant-..."``.
    """
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
            continue
        if looks_secret(part):
            key = f'"{secret_prefix(part)}..."'
        else:
            key = part if _BARE_KEY.fullmatch(part) else _quote(part)
        out.append(key if not out else "." + key)
    return "".join(out)


def _quote(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


class LineMap:
    """The line of each config path in one TOML text (lines count from 1)."""

    __slots__ = ("_lines",)

    def __init__(self, text: str) -> None:
        self._lines = scan(text)

    def line_of(self, path: Sequence[PathPart]) -> int:
        """The line of ``path``, or of its innermost part that exists in the text (1 for none)."""
        key = tuple(path)
        while key:
            line = self._lines.get(key)
            if line is not None:
                return line
            key = key[:-1]
        return 1


def scan(text: str) -> dict[ConfigPath, int]:
    """Every config path the text spells out, with the line where it first appears.

    Never raises: on text that is not valid TOML it returns what it found up to the trouble.
    """
    scanner = _Scanner(text)
    try:
        scanner.document()
    except (IndexError, RecursionError, ValueError):
        pass
    return scanner.found


# Tokens, matched with the C regex engine: a character-by-character loop in Python is several
# times slower on the thousand-route files people generate.
_BLANKS = re.compile(r"[ \t]*")
_SPACE = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")
_BASIC = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_LITERAL = re.compile(r"'([^'\n]*)'")
# Up to two quotes just before the closing three belong to the content: match 3 to 5.
_ML_BASIC = re.compile(r'"""(?:[^"\\]|\\[\s\S]|""?(?!"))*"{3,5}')
_ML_LITERAL = re.compile(r"'''(?:[^']|''?(?!'))*'{3,5}")
_SIMPLE_KEY = re.compile(r"([A-Za-z0-9_-]+)[ \t]*=[ \t]*")
_SCALAR = re.compile(r"[^,\]}#\r\n]*")
# Strings on one line, to blank them out before counting brackets.
_ONE_LINE_STRINGS = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'')
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|x([0-9A-Fa-f]{2})|(.))")


def _unescape(m: re.Match[str]) -> str:
    digits = m.group(1) or m.group(2) or m.group(3)
    return chr(int(digits, 16)) if digits else _ESCAPES.get(m.group(4), m.group(4))


class _Scanner:
    __slots__ = ("text", "pos", "found", "arrays", "_newlines")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.found: dict[ConfigPath, int] = {}
        # Arrays of tables seen so far ("route",) -> count: a later header or [[...]] refers
        # to the last element, and the next [[route]] is element `count`.
        self.arrays: dict[ConfigPath, int] = {}
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def record(self, path: ConfigPath, pos: int) -> None:
        """Note where ``path`` (and each of its parents not seen before) first appears."""
        found = self.found
        if path in found:
            return
        line = bisect.bisect_left(self._newlines, pos) + 1
        end = len(path)
        while end and path[:end] not in found:
            found[path[:end]] = line
            end -= 1

    # --- document -------------------------------------------------------------------------

    def document(self) -> None:
        text, n = self.text, len(self.text)
        table: ConfigPath = ()
        while True:
            self.pos = _SPACE.match(text, self.pos).end()  # type: ignore[union-attr]
            if self.pos >= n:
                return
            start = self.pos
            if text.startswith("[[", start):
                self.pos += 2
                keys = self.key()
                array = self.resolve(keys[:-1]) + keys[-1:]
                index = self.arrays.get(array, 0)
                self.arrays[array] = index + 1
                table = array + (index,)
                self.record(table, start)
            elif text[start] == "[":
                self.pos += 1
                table = self.resolve(self.key())
                self.record(table, start)
            else:
                simple = _SIMPLE_KEY.match(text, start)
                if simple is not None:  # the common `name = ...`, without the general key reader
                    path = table + (simple.group(1),)
                    self.pos = simple.end()
                else:
                    path = table + self.key()
                self.record(path, start)
                if self.one_line_value():
                    # Everything inside the value (array elements, inline-table keys) is on
                    # this line too, and line_of() falls back to the key: no need to walk it.
                    continue
                self.equals()
                self.value(path)
            self.skip_line()

    def one_line_value(self) -> bool:
        """If the value after the key ends on this line, skip the line and say so."""
        text = self.text
        end = text.find("\n", self.pos)
        end = len(text) if end < 0 else end
        rest = text[self.pos : end]
        if '"""' in rest or "\'\'\'" in rest:
            return False  # a multi-line string may start here
        if "[" in rest or "{" in rest:
            bare = _ONE_LINE_STRINGS.sub("", rest).partition("#")[0]
            if bare.count("[") + bare.count("{") != bare.count("]") + bare.count("}"):
                return False
        self.pos = end + 1
        return True

    def resolve(self, keys: ConfigPath) -> ConfigPath:
        """A header's keys as a path: a key naming an array of tables means its last element."""
        path: ConfigPath = ()
        for key in keys:
            path += (key,)
            count = self.arrays.get(path)
            if count:
                path += (count - 1,)
        return path

    # --- pieces ---------------------------------------------------------------------------

    def blanks(self) -> None:
        self.pos = _BLANKS.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def space(self) -> None:
        """Skip blanks, newlines and comments (inside arrays and inline tables)."""
        self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def equals(self) -> None:
        self.blanks()
        if self.text.startswith("=", self.pos):
            self.pos += 1
        self.blanks()

    def skip_line(self) -> None:
        """Skip the rest of the line: the closing bracket of a header, blanks, a comment."""
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end + 1

    def key(self) -> ConfigPath:
        """A dotted key: bare, "basic" or 'literal' parts separated by dots."""
        parts: list[PathPart] = []
        text = self.text
        while True:
            self.blanks()
            c = text[self.pos : self.pos + 1]
            if c == '"' or c == "'":
                parts.append(self.string())
            else:
                m = _BARE_KEY.match(text, self.pos)
                if m is None:
                    break
                parts.append(m.group())
                self.pos = m.end()
            self.blanks()
            if not text.startswith(".", self.pos):
                break
            self.pos += 1
        if not parts:
            raise ValueError(f"no key at offset {self.pos}")
        return tuple(parts)

    def value(self, path: ConfigPath) -> None:
        """Skip one value, recording the elements of arrays and the keys of inline tables."""
        text, n = self.text, len(self.text)
        c = text[self.pos : self.pos + 1]
        if c == '"' or c == "'":
            self.string()
        elif c == "[":
            self.pos += 1
            index = 0
            while True:
                self.space()
                if self.pos >= n or text[self.pos] == "]":
                    self.pos += 1
                    return
                element = path + (index,)
                self.record(element, self.pos)
                self.value(element)
                self.space()
                if text.startswith(",", self.pos):
                    self.pos += 1
                    index += 1
                elif not text.startswith("]", self.pos):
                    raise ValueError(f"unexpected character at offset {self.pos} in an array")
        elif c == "{":
            self.pos += 1
            while True:
                self.space()
                if self.pos >= n or text[self.pos] == "}":
                    self.pos += 1
                    return
                if text[self.pos] == ",":
                    self.pos += 1
                    continue
                start = self.pos
                inner = path + self.key()
                self.record(inner, start)
                self.equals()
                self.value(inner)
        else:
            # A number, boolean or date-time: up to the next delimiter (date-times hold spaces).
            self.pos = _SCALAR.match(text, self.pos).end()  # type: ignore[union-attr]

    def string(self) -> str:
        """Read a string of any of the four kinds; return its content (escapes decoded)."""
        text, pos = self.text, self.pos
        if text.startswith('"""', pos) or text.startswith("'''", pos):
            m = (_ML_BASIC if text[pos] == '"' else _ML_LITERAL).match(text, pos)
            if m is None:
                raise ValueError(f"unclosed string at offset {pos}")
            self.pos = m.end()
            return m.group()[3:-3]  # only keys need the content, and keys are one-line strings
        m = (_BASIC if text[pos] == '"' else _LITERAL).match(text, pos)
        if m is None:
            raise ValueError(f"unclosed string at offset {pos}")
        self.pos = m.end()
        content = m.group(1)
        if text[pos] == '"' and "\\" in content:
            content = _ESCAPE.sub(_unescape, content)
        return content
