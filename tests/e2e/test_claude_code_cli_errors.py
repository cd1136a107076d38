"""The real Claude Code CLI in front of the gateway: what a person reads when something is wrong.

Skipped unless the CLI is installed: ``claude`` on the PATH, or ``$GATEWAY_TEST_CLAUDE`` naming
it (``npm install @anthropic-ai/claude-code``). Only loopback fake upstreams are used; Claude
Code runs with a fresh HOME, an API key it sends to the gateway, and no nonessential traffic.

Claude Code retries an error for minutes unless it carries ``x-should-retry: false`` (a 401:
about ten times, two minutes of silence), and shows any 404 as "There's an issue with the
selected model"; these tests hold the gateway to what it does about both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fakes.config import routes_toml
from fakes.gateway import GATEWAY_SCRIPT, GatewayProcess
from fakes.sockets import free_port

CLAUDE = os.environ.get("GATEWAY_TEST_CLAUDE") or shutil.which("claude")
pytestmark = pytest.mark.skipif(
    not CLAUDE, reason="the Claude Code CLI is not installed (or set $GATEWAY_TEST_CLAUDE to it)"
)

Factory = Callable[..., Any]
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


def claude(home: Path, base_url: str, *args: str, path: str | None = None,
           program: list[str] | None = None, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run Claude Code (or ``program``, e.g. `gateway code`); its result and when it ended (epoch s)."""
    full = {
        "PATH": path or os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-test-cli", **(env or {}),
    }
    done = subprocess.run([*(program or [str(CLAUDE)]), *args], env=full, cwd=home, capture_output=True,
                          text=True, timeout=150, stdin=subprocess.DEVNULL)
    return done, time.time()


def _request_times(gw: GatewayProcess) -> list[float]:
    """When the gateway answered each request (its request log lines)."""
    times = []
    for line in gw.logs().splitlines():
        found = _LOG_TIME.match(line)
        if found and "gateway.request: request id=" in line:
            times.append(time.mktime(time.strptime(found.group(1), "%Y-%m-%d %H:%M:%S")) + int(found.group(2)) / 1000)
    return times


@pytest.fixture
def gateway(upstream_factory: Factory, gateway_factory: Factory) -> GatewayProcess:
    anthropic = upstream_factory("anthropic")
    config = routes_toml(
        providers={"zai": {"base_url": anthropic.url, "key": {"env": "ZAI_API_KEY"}},
                   "anthropic": {"base_url": anthropic.url, "key": {"client": True}}},
        routes=[{"name": "haiku", "match": "claude-haiku-*", "to": [{"provider": "zai", "model": "glm-4.7"}]},
                {"name": "sonnet", "match": "claude-sonnet-*", "to": "anthropic"}],
    )
    gw: GatewayProcess = gateway_factory(config)  # ZAI_API_KEY is not set
    return gw


def test_a_missing_key_shows_the_gateways_message_at_once(gateway: GatewayProcess, tmp_path: Path) -> None:
    started = time.time()
    done, ended = claude(tmp_path, gateway.url, "-p", "say hi", "--model", "haiku")
    assert done.returncode == 1
    assert "401 no credential for provider 'zai': env ZAI_API_KEY: environment variable ZAI_API_KEY is not set" in (
        done.stdout + done.stderr)
    answered = _request_times(gateway)
    assert len(answered) == 1, gateway.logs()  # not retried
    assert ended - answered[0] < 2.0, f"shown {ended - answered[0]:.2f} s after the gateway answered"
    print(f"missing key: shown {ended - answered[0]:.2f} s after the 401, {ended - started:.2f} s in all")


def test_a_routing_miss_shows_the_fix(gateway: GatewayProcess, tmp_path: Path) -> None:
    done, _ = claude(tmp_path, gateway.url, "-p", "say hi", "--model", "opus")
    text = done.stdout + done.stderr
    assert done.returncode == 1
    assert "model 'claude-opus-5-5' matches no route (routes: haiku, sonnet); add a [[route]]" in text
    assert "issue with the selected model" not in text


def test_a_doubled_v1_shows_which_base_url_to_set(gateway: GatewayProcess, tmp_path: Path) -> None:
    done, _ = claude(tmp_path, gateway.url + "/v1", "-p", "say hi", "--model", "sonnet")
    assert done.returncode == 1
    assert f"set ANTHROPIC_BASE_URL to {gateway.url} (without /v1; Claude Code adds /v1 itself)" in done.stdout


def test_gateway_code_answers_through_a_background_gateway(upstream_factory: Factory, tmp_path: Path) -> None:
    zai = upstream_factory("zai", api_key="zai-key")
    anthropic = upstream_factory("anthropic")
    work = tmp_path / "work"
    work.mkdir()
    port = free_port()
    (work / "routes.toml").write_text(routes_toml(
        server={"port": port},
        providers={"zai": {"base_url": zai.url, "key": {"env": "ZAI_API_KEY"}},
                   "anthropic": {"base_url": anthropic.url, "key": {"client": True}}},
        routes=[{"name": "haiku", "match": "claude-haiku-*", "to": [{"provider": "zai", "model": "glm-4.7"}]},
                {"name": "main", "match": "*", "to": "anthropic"}],
    ))
    env = {"ZAI_API_KEY": "zai-key", "GATEWAY_STATE_DIR": str(tmp_path / "state")}
    path = f"{Path(str(CLAUDE)).parent}{os.pathsep}{os.environ['PATH']}"
    gateway = [str(GATEWAY_SCRIPT)]
    try:
        done, _ = claude(work, "http://unused.invalid", "-p", "say hi", "--model", "haiku", path=path,
                         program=[*gateway, "code"], env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip() == "[zai] model=glm-4.7 hello from the fake zai upstream"
        assert done.stderr.startswith(f"gateway: started in the background at http://127.0.0.1:{port}")
        assert zai.last is not None and zai.last.headers["x-api-key"] == "zai-key"
    finally:
        subprocess.run([*gateway, "stop"], cwd=work, env={**os.environ, **env, "HOME": str(tmp_path)},
                       capture_output=True, timeout=60)
