"""``gateway validate``: exit codes, every output format, several files, --strict."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cli_support import EXAMPLES, PROFILES, Run

GOOD = """\
version = 1

[providers.anthropic]
base_url = "https://api.anthropic.com"
key = { client = true }

[[route]]
name = "default"
match = "*"
to = "anthropic"
"""

# Two errors (an unknown provider, twice) in one file: both must be reported.
TWO_ERRORS = """\
version = 1

[providers.zai]
base_url = "https://api.z.ai/api/anthropic"
key = { client = true }

[[route]]
name = "haiku"
match = "*haiku*"
to = "zaii"

[[route]]
name = "sonnet"
match = "*sonnet*"
to = "zai"

[[route]]
name = "default"
match = "*"
to = [{ provider = "zia" }]
"""

# Valid, with one warning: a literal key in the file.
LITERAL_KEY = GOOD.replace("key = { client = true }", 'key = { value = "sk-test-literal-key-000000" }')

LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<path>[^:]+): (?P<message>.+)$")


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_exits_0_with_no_problem_lines(run: Run, workdir: Path) -> None:
    write(workdir, "routes.toml", GOOD)
    result = run("validate", "routes.toml")
    assert result.code == 0
    assert result.out == ""
    assert result.err.startswith("OK: 1 file checked, 0 invalid, 0 errors, 0 warnings")


def test_every_example_is_valid(run: Run) -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.toml"))
    assert len(files) == len(PROFILES) == 8
    result = run("validate", *files)
    assert result.code == 0, result.out + result.err


def test_every_example_passes_strict_when_its_variables_are_set(run: Run) -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.toml"))
    env = {"ZAI_API_KEY": "zai-test-key", "GATEWAY_CLIENT_KEY": "client-test-key", "DEEPSEEK_API_KEY": "ds-test-key"}
    result = run("validate", "--strict", *files, env=env)
    assert result.code == 0, result.out + result.err
    assert result.out == ""


def test_misspelled_provider_exits_1_with_file_line_path_message(run: Run, workdir: Path) -> None:
    text = (EXAMPLES / "mixed.toml").read_text(encoding="utf-8")
    text = text.replace('to = [{ provider = "zai", model = "glm-4.7" }]', 'to = [{ provider = "zaii", model = "glm-4.7" }]')
    write(workdir, "routes.toml", text)
    result = run("validate", "routes.toml", env={"ZAI_API_KEY": "x"})
    assert result.code == 1
    errors = [line for line in result.out.splitlines() if "warning:" not in line]
    assert len(errors) == 1
    m = LINE.match(errors[0])
    assert m is not None, errors[0]
    assert m["file"] == "routes.toml"
    assert re.fullmatch(r"route\[\d+\]\.to\[0\]\.provider", m["path"])
    assert "unknown provider 'zaii'" in m["message"]
    # The line number points at the misspelled provider in the file.
    assert "zaii" in text.splitlines()[int(m["line"]) - 1]
    assert result.err.startswith("FAILED: 1 file checked, 1 invalid, 1 error")


def test_every_error_of_every_file_is_reported(run: Run, workdir: Path) -> None:
    write(workdir, "good.toml", GOOD)
    write(workdir, "bad.toml", TWO_ERRORS)
    result = run("validate", "good.toml", "bad.toml", "also-bad.toml")
    assert result.code == 1
    lines = result.out.splitlines()
    assert [line for line in lines if line.startswith("bad.toml:")] and len(
        [line for line in lines if line.startswith("bad.toml:") and "unknown provider" in line]
    ) == 2
    assert any(line.startswith("also-bad.toml: ") and "no such file" in line for line in lines)
    assert not any(line.startswith("good.toml") for line in lines)
    assert "3 files checked, 2 invalid, 3 errors" in result.err


def test_missing_file_exits_1_and_says_so(run: Run) -> None:
    result = run("validate", "nowhere/routes.toml")
    assert result.code == 1
    assert result.out.strip() == "nowhere/routes.toml: no such file; check the path"


def test_warning_is_marked_and_does_not_fail(run: Run, workdir: Path) -> None:
    write(workdir, "routes.toml", LITERAL_KEY)
    result = run("validate", "routes.toml")
    assert result.code == 0
    [line] = result.out.splitlines()
    m = LINE.match(line)
    assert m is not None
    assert m["path"] == "providers.anthropic.key.value"
    assert m["message"].startswith("warning: ")
    assert "1 warning" in result.err


def test_strict_makes_a_warning_fail(run: Run, workdir: Path) -> None:
    write(workdir, "routes.toml", LITERAL_KEY)
    result = run("validate", "--strict", "routes.toml")
    assert result.code == 1
    assert "warning: " in result.out
    assert result.err.startswith("FAILED:") and "--strict" in result.err


def test_json_format_structure(run: Run, workdir: Path) -> None:
    write(workdir, "good.toml", LITERAL_KEY)
    write(workdir, "bad.toml", TWO_ERRORS)
    result = run("validate", "--format", "json", "good.toml", "bad.toml")
    assert result.code == 1
    doc = json.loads(result.out)
    assert doc["valid"] is False and doc["strict"] is False
    assert doc["summary"] == {"files": 2, "invalid": 1, "errors": 2, "warnings": 1}
    good, bad = doc["files"]
    assert good["file"] == "good.toml" and good["valid"] is True and good["warnings"] == 1
    [warning] = good["problems"]
    assert set(warning) == {"severity", "file", "line", "path", "message"}
    assert warning["severity"] == "warning" and isinstance(warning["line"], int)
    assert bad["valid"] is False and bad["errors"] == 2
    assert all(p["severity"] == "error" and "unknown provider" in p["message"] for p in bad["problems"])


def test_json_strict_marks_a_warning_only_file_invalid(run: Run, workdir: Path) -> None:
    write(workdir, "routes.toml", LITERAL_KEY)
    result = run("validate", "--format", "json", "--strict", "routes.toml")
    assert result.code == 1
    doc = json.loads(result.out)
    assert doc["strict"] is True and doc["valid"] is False
    assert doc["files"][0]["valid"] is False


def test_json_missing_file_has_null_line(run: Run) -> None:
    result = run("validate", "--format", "json", "missing.toml")
    assert result.code == 1
    [problem] = json.loads(result.out)["files"][0]["problems"]
    assert problem["line"] is None and problem["path"] == "" and problem["file"] == "missing.toml"


def test_github_format_annotations(run: Run, workdir: Path) -> None:
    write(workdir, "bad.toml", TWO_ERRORS)
    write(workdir, "warn.toml", LITERAL_KEY)
    result = run("validate", "--format", "github", "bad.toml", "warn.toml")
    assert result.code == 1
    lines = result.out.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    warnings = [line for line in lines if line.startswith("::warning ")]
    assert len(errors) == 2 and len(warnings) == 1
    annotation = re.compile(r"^::(error|warning) file=([^,]+),line=(\d+),title=([^:]+)::(.+)$")
    for line in errors + warnings:
        assert annotation.match(line), line
    assert errors[0].startswith("::error file=bad.toml,line=")
    assert "unknown provider 'zaii'" in errors[0]
    assert warnings[0].startswith("::warning file=warn.toml,")


def test_github_strict_annotates_warnings_as_errors(run: Run, workdir: Path) -> None:
    write(workdir, "warn.toml", LITERAL_KEY)
    result = run("validate", "--format", "github", "--strict", "warn.toml")
    assert result.code == 1
    assert result.out.startswith("::error file=warn.toml,")


def test_github_escapes_property_separators(run: Run) -> None:
    result = run("validate", "--format", "github", "missing,x:y.toml")
    assert result.code == 1
    assert result.out.startswith("::error file=missing%2Cx%3Ay.toml,title=gateway validate::no such file")


def test_stdin_is_read_for_dash(run: Run) -> None:
    result = run("validate", "-", stdin=TWO_ERRORS)
    assert result.code == 1
    assert all(line.startswith("<stdin>:") for line in result.out.splitlines())


def test_usage_mistakes_exit_2_with_error_line(run: Run, workdir: Path) -> None:
    write(workdir, "routes.toml", GOOD)
    for args in (("validate", "--format", "yaml", "routes.toml"), ("validate", "--nope", "routes.toml")):
        result = run(*args)
        assert result.code == 2, args
        assert result.out == ""
        assert result.err.splitlines()[-1].startswith("Error: "), result.err
        assert "gateway validate --help" in result.err
