"""The real Claude Code CLI through the gateway: its subagent goes to Z.AI, its conversation stays.

Runs `claude -p` (the CLI named by `$GATEWAY_TEST_CLAUDE`, or `claude` on PATH; skipped when
neither exists; `.ci/run` installs it from npm) with a fresh HOME, `CLAUDE_CODE_GATEWAY_HINT_HEADERS=1` and
`ANTHROPIC_BASE_URL` at the gateway serving `examples/quota-saver.toml`, whose providers are two
fake upstreams on loopback: nothing leaves the machine. The "anthropic" fake answers the main
conversation's first request with an `Agent` tool call, as the real conversation in
tests/fakes/captured/cc_hint_headers_main_spawning_agent.json went, so Claude Code starts a
subagent; the subagent's requests name the same model but must reach the "zai" fake.

    python -m pytest tests/e2e/test_claude_code_cli_subagents.py -s     # prints what each upstream saw
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fakes import Choose, FakeUpstream, RecordedRequest, Reply, Text, ToolUse, unified_headers
from fakes.config import profile_with_urls
from fakes.gateway import GatewayProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZAI_KEY = "zai-key-claude-code-cli-000"
SUBAGENT_ANSWER = "SUBAGENT-SAYS-HI"
FINAL_ANSWER = "MAIN-CONVERSATION-DONE"


CLAUDE = os.environ.get("GATEWAY_TEST_CLAUDE") or shutil.which("claude")
pytestmark = pytest.mark.skipif(
    not CLAUDE, reason="the Claude Code CLI is not installed (or set $GATEWAY_TEST_CLAUDE to it)"
)


def _request_class(recorded: RecordedRequest) -> str:
    return recorded.headers.get("x-claude-code-request-class", "-")


def _has_agent_result(recorded: RecordedRequest) -> bool:
    body = recorded.json if isinstance(recorded.json, dict) else {}
    for message in body.get("messages", []):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
            return True
    return False


def _anthropic_answer(recorded: RecordedRequest) -> Reply:
    # The main conversation's first turn starts a subagent; every later turn just answers.
    if _request_class(recorded) == "main" and not _has_agent_result(recorded):
        return Reply(content=(
            Text("Starting a helper."),
            ToolUse("Agent", {"description": "say hi", "prompt": "Say hi briefly.", "subagent_type": "general-purpose"}),
        ))
    return Reply(content=(Text(FINAL_ANSWER),))


def run_claude(
    gateway_factory: Callable[..., GatewayProcess], anthropic: FakeUpstream, zai: FakeUpstream, tmp_path: Path
) -> tuple[GatewayProcess, subprocess.CompletedProcess[str]]:
    """The gateway on quota-saver with the two fakes, and `claude -p` run against it as a new user would."""
    assert CLAUDE is not None
    config = profile_with_urls(EXAMPLES / "quota-saver.toml", {"anthropic": anthropic.url, "zai": zai.url})
    gateway = gateway_factory(config, env={"ZAI_API_KEY": ZAI_KEY})
    home = tmp_path / "claude-home"  # a fresh HOME: no login, no settings, no history
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": "sk-test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_GATEWAY_HINT_HEADERS": "1",
    }
    done = subprocess.run(
        [CLAUDE, "-p", "Use the Agent tool once to say hi, then report what it said.", "--model", "sonnet"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return gateway, done


def test_a_subagent_of_the_real_cli_reaches_the_second_provider(
    upstream_factory: Callable[..., FakeUpstream], gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    anthropic = upstream_factory("anthropic")
    zai = upstream_factory("zai", api_key=ZAI_KEY, strict_third_party=True, allowed_betas=None)
    anthropic.set_default(Choose(_anthropic_answer))
    zai.set_default(Reply(content=(Text(SUBAGENT_ANSWER),)))
    gateway, done = run_claude(gateway_factory, anthropic, zai, tmp_path)
    seen = [(r.upstream, _request_class(r), r.headers.get("x-claude-code-agent-type", "-"), r.model)
            for r in anthropic.requests + zai.requests if r.path_only == "/v1/messages"]
    print("\n".join([f"claude's answer: {done.stdout.strip()}", *map(str, seen)]))

    subagent = [r for r in zai.requests if _request_class(r) == "subagent"]
    assert subagent, f"no subagent request reached zai: {seen}"
    assert {r.model for r in subagent} == {"glm-4.7"}
    assert {r.headers["x-claude-code-agent-type"] for r in subagent} == {"general-purpose"}
    main = [r for r in anthropic.requests if _request_class(r) == "main"]
    assert len(main) >= 2 and not any(_request_class(r) == "subagent" for r in anthropic.requests)
    assert not zai.saw("sk-test")
    gateway.wait_for_log("route=helpers class=subagent agent=general-purpose tried=zai:200")


def test_the_real_cli_moves_to_the_second_provider_when_the_week_is_nearly_used(
    upstream_factory: Callable[..., FakeUpstream], gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    anthropic = upstream_factory("anthropic")
    zai = upstream_factory("zai", api_key=ZAI_KEY, strict_third_party=True, allowed_betas=None)
    week = time.time() + 3 * 86400
    plan = unified_headers(claim="seven_day", reset=week, windows={"5h": (0.2, time.time() + 3600), "7d": (0.9, week)})
    anthropic.set_default(Choose(lambda r: Reply(content=_anthropic_answer(r).content, headers=plan)))
    zai.set_default(Reply(content=(Text(FINAL_ANSWER),)))
    gateway, _ = run_claude(gateway_factory, anthropic, zai, tmp_path)
    log = gateway.wait_for_log("spill=anthropic:7d")
    # The first answer said the week is at 90%: from then on the conversation is on Z.AI.
    assert [_request_class(r) for r in anthropic.requests if r.path_only == "/v1/messages"] == ["main"]
    assert {_request_class(r) for r in zai.requests} == {"main", "subagent"}
    assert "route=main class=main tried=anthropic:spill,zai:200 used=zai upstream_model=glm-4.7 spill=anthropic:7d" in log
    quota = [e for e in gateway.health()["quota"] if e["provider"] == "anthropic"]
    assert [(e["spilling"], e["windows"]["7d"]["utilization"]) for e in quota] == [(["7d"], 0.9)]
