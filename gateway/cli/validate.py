"""``gateway validate [F...] [--format text|json|github] [--strict]``: check configs without running.

Exit 0 when every file is valid, 1 when one is not (``--strict``: warnings fail too).

Without files it checks the config ``gateway serve`` would load here (found as serve finds it,
and named on stderr), as ``nginx -t`` does, and also what would go wrong running it here: a
Claude Code tier no route takes, a profile's ``# needs:`` not met (``gateway.cli.checks``).
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
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gateway.cli.environment import environment
from rules.errors import Problem
from rules.model import RuleSet

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


def _check_file(name: str, env: Mapping[str, str], shown: str | None = None) -> tuple[_FileResult, RuleSet | None, bytes]:
    from rules.loader import check_bytes

    shown = shown or ("<stdin>" if name == STDIO else name)
    try:
        data = sys.stdin.buffer.read() if name == STDIO else Path(name).read_bytes()
    except FileNotFoundError:
        return _FileResult(shown, [Problem("no such file; check the path", file=shown)]), None, b""
    except IsADirectoryError:
        return _FileResult(shown, [Problem("is a directory; give the path of a .toml file", file=shown)]), None, b""
    except OSError as exc:
        return _FileResult(shown, [Problem(f"cannot read the file: {exc.strerror}", file=shown)]), None, b""
    ruleset, problems = check_bytes(data, file=shown, env=env)
    return _FileResult(shown, list(problems)), ruleset, data


def _check_served(env: Mapping[str, str]) -> tuple[_FileResult, str]:
    """The config ``serve`` would load here, checked, with what would fail running it; and its origin."""
    from gateway.cli.checks import coverage_warnings, needs_warnings
    from gateway.settings import find_config
    from rules.discover import load_discovered
    from rules.errors import ConfigError

    cwd = Path.cwd()
    try:
        found = find_config(None, env, cwd)
    except ConfigError as exc:  # $GATEWAY_CONFIG names no file
        return _FileResult("$GATEWAY_CONFIG", list(exc.problems)), "$GATEWAY_CONFIG"
    if found.kind == "file" and found.path is not None:
        shown = os.path.relpath(found.path, cwd) if found.path.is_relative_to(cwd) else str(found.path)
        result, ruleset, data = _check_file(str(found.path), env, shown)
        if ruleset is not None:
            result.problems.extend(coverage_warnings(ruleset, env, shown))
        text = data.decode("utf-8", "replace")
        result.problems.extend(needs_warnings(text, shown, env, known=result.problems))
        return result, f"{shown} ({found.reason})"
    shown = f"<{found.reason.split(':')[0]}>"  # <legacy environment>, <embedded default>
    try:
        ruleset = load_discovered(found, env)
    except ConfigError as exc:
        return _FileResult(shown, list(exc.problems)), found.reason
    return _FileResult(shown, [*ruleset.warnings, *coverage_warnings(ruleset, env, shown)]), found.reason


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
    source: str | None = None
    if args.files:
        results = [_check_file(name, env)[0] for name in args.files]
    else:
        served, source = _check_served(env)
        results = [served]
        print(f"checking {source}: the config `gateway serve` would load here", file=sys.stderr)
    invalid = sum(1 for r in results if not r.valid(strict))
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    out = sys.stdout

    if args.format == "json":
        document: dict[str, Any] = {
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
        if source is not None:
            document["config"] = source  # what was checked, when no file was named
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
