"""``gateway validate F... [--format text|json|github] [--strict]``: check configs without running.

Exit 0 when every file is valid, 1 when one is not (``--strict``: warnings fail too).
``--format json`` prints one object (stable: fields may be added, never changed)::

    {"valid": false, "strict": false,
     "summary": {"files": 2, "invalid": 1, "errors": 1, "warnings": 1},
     "files": [{"file": "a.toml", "valid": false, "errors": 1, "warnings": 1,
                "problems": [{"severity": "error", "file": "a.toml", "line": 14,
                              "path": "route[2].to[0].provider", "message": "..."}, ...]}]}

``line`` is null and ``path`` is "" when unknown.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gateway.cli.environment import environment
from rules.errors import Problem

__all__ = ["STDIO", "cmd_validate", "plural", "text_line"]

STDIO = "-"


@dataclasses.dataclass(frozen=True)
class _FileResult:
    file: str
    problems: list[Problem]

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems if p.severity == "warning")

    def valid(self, strict: bool) -> bool:
        return self.errors == 0 and not (strict and self.warnings)


def _check_file(name: str, env: Mapping[str, str]) -> _FileResult:
    from rules.loader import check_bytes

    shown = "<stdin>" if name == STDIO else name
    try:
        data = sys.stdin.buffer.read() if name == STDIO else Path(name).read_bytes()
    except FileNotFoundError:
        return _FileResult(shown, [Problem("no such file; check the path", file=shown)])
    except IsADirectoryError:
        return _FileResult(shown, [Problem("is a directory; give the path of a .toml file", file=shown)])
    except OSError as exc:
        return _FileResult(shown, [Problem(f"cannot read the file: {exc.strerror}", file=shown)])
    _, problems = check_bytes(data, file=shown, env=env)
    return _FileResult(shown, list(problems))


def text_line(problem: Problem) -> str:
    if problem.severity == "warning":
        # The mark goes where the message starts, so "file:line: path:" stays parseable.
        problem = dataclasses.replace(problem, message=f"warning: {problem.message}")
    return problem.render()


def _github_escape(value: str, *, prop: bool) -> str:
    # GitHub's workflow-command encoding: data escapes %, CR, LF; properties also ':' and ','.
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def _github_line(problem: Problem, strict: bool) -> str:
    # Under --strict a warning fails the job, so it is annotated as the error it has become.
    level = "error" if problem.severity == "error" or strict else "warning"
    props = []
    if problem.file:
        props.append(f"file={_github_escape(problem.file, prop=True)}")
    if problem.line is not None:
        props.append(f"line={problem.line}")
    title = problem.path or "gateway validate"
    props.append(f"title={_github_escape(title, prop=True)}")
    return f"::{level} {','.join(props)}::{_github_escape(problem.message, prop=False)}"


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "severity": problem.severity,
        "file": problem.file,
        "line": problem.line,
        "path": problem.path,
        "message": problem.message,
    }


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def cmd_validate(args: argparse.Namespace) -> int:
    env = environment()
    strict: bool = args.strict
    results = [_check_file(name, env) for name in args.files]
    invalid = sum(1 for r in results if not r.valid(strict))
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    out = sys.stdout

    if args.format == "json":
        document = {
            "valid": invalid == 0,
            "strict": strict,
            "summary": {"files": len(results), "invalid": invalid, "errors": errors, "warnings": warnings},
            "files": [
                {
                    "file": r.file,
                    "valid": r.valid(strict),
                    "errors": r.errors,
                    "warnings": r.warnings,
                    "problems": [_problem_json(p) for p in r.problems],
                }
                for r in results
            ],
        }
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        render: Callable[[Problem], str] = (
            (lambda p: _github_line(p, strict)) if args.format == "github" else text_line
        )
        for result in results:
            for problem in result.problems:
                out.write(render(problem) + "\n")
    out.flush()

    verdict = "FAILED" if invalid else "OK"
    summary = (
        f"{verdict}: {plural(len(results), 'file')} checked, {invalid} invalid, "
        f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"
    )
    if strict and warnings:
        summary += " (--strict: warnings fail)"
    print(summary, file=sys.stderr)
    return 1 if invalid else 0
