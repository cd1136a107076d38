"""README.md and docs/*.md: the example configs are valid, every link and anchor resolves, every
command and option is documented, and the test command CI runs is the documented one."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import pytest
from cli_support import REPO, Run

from gateway.cli.parser import build_parser

README = (REPO / "README.md").read_text(encoding="utf-8")
DOC_FILES = [REPO / "README.md", REPO / "ARCHITECTURE.md", *sorted((REPO / "docs").glob("*.md"))]
DOCS = {path: path.read_text(encoding="utf-8") for path in DOC_FILES}

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.DOTALL | re.MULTILINE)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def _prose(text: str) -> str:
    """The text without fenced code blocks (whose '#' lines are not headings, nor links links)."""
    return _FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text lower-cased, punctuation dropped, spaces to '-'."""
    text = _LINK.sub(r"\1", heading)  # a link shows its text
    text = text.replace("`", "")
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w: letters, digits and '_' are kept, as GitHub does
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown file defines: its headings' slugs (repeats get -1, -2, ...) and <a id>."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    prose = _prose(text)
    for heading in _HEADING.findall(prose):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    found.update(_HTML_ANCHOR.findall(prose))
    return found


def links(text: str) -> list[str]:
    """The targets of every Markdown link outside code."""
    return [target for _, target in _LINK.findall(_CODE_SPAN.sub("", _prose(text)))]


def test_slug_follows_githubs_rules() -> None:
    assert slug("Edit routes.toml while it runs") == "edit-routestoml-while-it-runs"
    assert slug("`gateway serve`") == "gateway-serve"
    assert slug("Metrics and usage") == "metrics-and-usage"
    assert slug("A provider preset, step by step") == "a-provider-preset-step-by-step"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_full_example_configs_are_valid(run: Run) -> None:
    examples = [block for text in DOCS.values() for block in fenced_blocks(text, "toml") if "[[route]]" in block]
    assert any("[defaults]" in block for block in fenced_blocks(DOCS[REPO / "docs" / "configuration.md"], "toml")), (
        "docs/configuration.md has no full routes.toml example"
    )
    for block in examples:
        result = run("validate", "-", stdin=block, env={"ZAI_API_KEY": "x", "GATEWAY_CLIENT_KEY": "y"})
        assert result.code == 0, result.out + result.err


@pytest.mark.parametrize("page", DOC_FILES, ids=lambda path: str(path.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken: list[str] = []
    for target in links(DOCS[page]):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # https:, mailto:, ...
            continue
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.is_relative_to(REPO):
            broken.append(f"{target}: outside the repository")
            continue
        if not path.exists():
            broken.append(f"{target}: no such file")
            continue
        if anchor:
            if path.suffix != ".md":
                broken.append(f"{target}: an anchor into a file that is not Markdown")
            elif anchor not in anchors(path.read_text(encoding="utf-8")):
                broken.append(f"{target}: no heading with anchor #{anchor} in {path.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}:\n" + "\n".join(broken)


def test_readme_links_every_docs_page() -> None:
    linked = {(REPO / target.partition("#")[0]).resolve() for target in links(README)}
    for page in DOC_FILES[1:]:
        assert page in linked, f"README.md does not link {page.relative_to(REPO)}"


def test_no_document_outside_the_repository_is_cited() -> None:
    for page, text in DOCS.items():
        for cited in ("../shared/", "DESIGN.md", "PROVIDERS.md", "STYLE.md", "design notes"):
            assert cited not in text, f"{page.relative_to(REPO)} cites {cited}"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _section(text: str, heading: str) -> str | None:
    found = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", _prose(text), re.DOTALL | re.MULTILINE)
    return found.group(1) if found else None


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_command_and_option_is_in_the_commands_page(command: str) -> None:
    section = _section(DOCS[REPO / "docs" / "commands.md"], command)
    assert section is not None, f"docs/commands.md has no '## {command}' section"
    for action in _subcommands()[command]._actions:
        words = [s for s in action.option_strings if s.startswith("--") and s != "--help"]
        if not action.option_strings and action.choices:
            words = [str(choice) for choice in action.choices]
        for word in words:
            assert f"`{word}" in section or f" {word}" in section, f"'## {command}' does not mention {word}"


def test_test_command_between_markers_is_what_ci_runs() -> None:
    marked = re.search(r"^<!-- test-command -->\n```sh\n(.*?)\n```\n<!-- /test-command -->$", README, re.DOTALL | re.M)
    assert marked is not None
    assert marked.group(1) == ".venv/bin/pip install '.[test]' && .venv/bin/python -m pytest"
    # The command .ci/run extracts (and would eval) is exactly that line.
    printed = subprocess.run(
        [str(REPO / ".ci" / "run"), "--print-command"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == marked.group(1) + "\n"


def test_quick_start_is_two_commands() -> None:
    assert "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/gateway serve" in README
