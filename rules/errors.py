"""Config problems, located in the file that caused them.

A ``Problem`` is one finding (error or warning) with its file, line and config path. A
``ConfigError`` is raised when a config cannot be used; it carries every error found, not
only the first, so ``gateway validate`` can show them all::

    ConfigError (ValueError)
      .problems -> (Problem, ...)     every error, in file order
      .file / .line / .path / .message  -> those of the first problem

Rendered, one line per problem, in the form editors and CI annotations understand::

    examples/mixed.toml:14: route[2].to[0].provider: unknown provider 'zaii' (known: anthropic, zai)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["ConfigError", "Problem", "Severity"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about a config: what is wrong, where, and how bad."""

    message: str
    file: str | None = None
    line: int | None = None
    path: str = ""
    severity: Severity = "error"

    def render(self) -> str:
        """``file:line: path: message``, leaving out the parts that are unknown."""
        where = self.file or ""
        if self.line is not None:
            where = f"{where}:{self.line}"
        parts = [p for p in (where, self.path) if p]
        parts.append(self.message)
        return ": ".join(parts)

    def __str__(self) -> str:
        return self.render()


class ConfigError(ValueError):
    """A config that cannot be used. Holds every error found, in file order."""

    def __init__(self, problems: Problem | Sequence[Problem]) -> None:
        if isinstance(problems, Problem):
            problems = (problems,)
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self.render())

    @property
    def file(self) -> str | None:
        return self.problems[0].file

    @property
    def line(self) -> int | None:
        return self.problems[0].line

    @property
    def path(self) -> str:
        return self.problems[0].path

    @property
    def message(self) -> str:
        return self.problems[0].message

    def render(self) -> str:
        """Every problem, one per line."""
        return "\n".join(p.render() for p in self.problems)

    def __str__(self) -> str:
        return self.render()
