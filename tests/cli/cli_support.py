"""Helpers for the CLI tests: the installed ``gateway`` script, run in a clean environment.

Every test runs the real script (the one next to ``sys.executable``) in a subprocess, from an
empty working directory, with HOME pointed at a temporary directory and every variable the
gateway reads removed: the developer's own ``~/.claude`` login, ``.env`` or ``ZAI_API_KEY``
must not change what a test sees.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

GATEWAY = Path(sys.executable).with_name("gateway")
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PROFILES = ("all-deepseek", "all-zai", "anthropic-only", "fallback", "lan", "local-ollama", "mixed", "quota-saver")

# Variables the gateway (or Claude Code's login lookup) reads: never inherited by a test.
_SCRUBBED_PREFIXES = ("HAIKU_", "SONNET_", "OPUS_", "ANTHROPIC_", "GATEWAY_", "ZAI_", "CLAUDE_", "DEEPSEEK_")


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


class Run(Protocol):
    def __call__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdin: str | None = None,
        program: list[str] | None = None,
    ) -> Result: ...


def clean_environment(home: Path) -> dict[str, str]:
    """The test process's environment without the gateway's variables, HOME set to ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["HOME"] = str(home)
    return env
