"""``gateway start``/``status``/``stop`` round trips, and ``gateway code`` with a stand-in ``claude``.

Everything runs the real console script; background gateways are real processes on free
loopback ports, their pid files in a temporary state directory ($GATEWAY_STATE_DIR). A
teardown kills whatever a failing test left running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_support import Run

from fakes.sockets import free_port

CONDITIONAL = """\
version = 1

[providers.anthropic]
base_url = "https://api.anthropic.com"
key = { client = true }

[[route]]
name = "helpers"
match = "claude-*"
when = { request_class = "subagent" }
to = "anthropic"

[[route]]
name = "default"
match = "*"
to = "anthropic"
"""

ZAI_ONLY = """\
version = 1

[server]
client_keys = [{ env = "GATEWAY_CLIENT_KEY" }]

[providers.zai]
base_url = "https://api.z.ai/api/anthropic"
key = { env = "ZAI_API_KEY" }

[[route]]
name = "default"
match = "*"
to = "zai"
"""

# A stand-in for Claude Code: prints its arguments and the variables `gateway code` sets.
FAKE_CLAUDE = """#!/bin/sh
echo "ARGS:$*"
env | grep -E '^(ANTHROPIC_|CLAUDE_CODE_)' | sort
"""


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "state"
    yield directory
    for pid_file in directory.glob("*.pid"):  # whatever a failing test left running
        try:
            os.kill(json.loads(pid_file.read_text())["pid"], signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            pass


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    return directory


def _env(state: Path, **extra: str) -> dict[str, str]:
    return {"GATEWAY_STATE_DIR": str(state), **extra}


def test_start_status_stop_round_trip(run: Run, state: Path) -> None:
    port = str(free_port())
    started = run("start", "--port", port, env=_env(state))
    assert started.code == 0, started.err
    url = f"http://127.0.0.1:{port}"
    assert started.out.startswith(f"Started the gateway in the background: {url} (pid ")
    [pid_file] = state.glob("*.pid")
    assert pid_file.name == f"gateway-127.0.0.1-{port}.pid"
    record = json.loads(pid_file.read_text())
    assert record["url"] == url and record["log"].endswith(f"gateway-127.0.0.1-{port}.log")
    # It answers now: start returned only once /health did.
    assert httpx.get(url + "/health", timeout=5).json()["pid"] == record["pid"]

    again = run("start", "--port", port, env=_env(state))
    assert (again.code, again.out.split(":")[0]) == (0, "Already running")

    status = run("status", "--port", port, env=_env(state))
    assert status.code == 0
    assert status.out.splitlines()[0].startswith(f"Running in the background at {url} (pid {record['pid']}")
    assert "generation 1" in status.out

    stopped = run("stop", "--port", port, env=_env(state))
    assert stopped.code == 0 and stopped.out.startswith(f"Gateway stopped: {url} (pid {record['pid']}")
    assert not pid_file.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=5)
    assert run("status", "--port", port, env=_env(state)).code == 3
    assert run("stop", "--port", port, env=_env(state)).out.startswith("No background gateway")


def test_stop_and_status_find_it_by_the_config_it_was_started_with(run: Run, state: Path, workdir: Path) -> None:
    port = free_port()
    (workdir / "routes.toml").write_text(CONDITIONAL.replace("version = 1\n", f"version = 1\n[server]\nport = {port}\n"))
    assert run("start", env=_env(state)).code == 0
    status = run("status", env=_env(state))
    assert status.code == 0 and f"127.0.0.1:{port}" in status.out
    assert f"Config: --config {workdir / 'routes.toml'}, generation 1" in status.out  # pinned
    assert run("stop", env=_env(state)).code == 0
    assert list(state.glob("*.pid")) == []


def test_a_start_failure_is_the_gateways_own_line(run: Run, state: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run("start", "--port", str(port), env=_env(state))
    assert result.code == 1
    assert result.err.splitlines() == [
        f"Error: the gateway did not start: cannot listen on 127.0.0.1:{port}: the port is in use by another "
        "program: stop it, or choose another --port (or [server] port)"
    ]
    assert list(state.glob("*.pid")) == []


def test_a_stale_pid_file_is_not_running(run: Run, state: Path) -> None:
    port = free_port()
    state.mkdir()
    (state / f"gateway-127.0.0.1-{port}.pid").write_text(json.dumps(
        {"pid": 2**22 + 7, "url": f"http://127.0.0.1:{port}", "config": "x", "log": "x", "started": 0}
    ))
    assert run("status", "--port", str(port), env=_env(state)).code == 3
    assert list(state.glob("*.pid")) == []


def _claude(bin_dir: Path) -> None:
    program = bin_dir / "claude"
    program.write_text(FAKE_CLAUDE)
    program.chmod(program.stat().st_mode | stat.S_IEXEC)


def _path(bin_dir: Path) -> str:
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def test_code_starts_a_gateway_and_runs_claude_through_it(run: Run, state: Path, bin_dir: Path, workdir: Path) -> None:
    _claude(bin_dir)
    port = free_port()
    (workdir / "routes.toml").write_text(CONDITIONAL)
    result = run("code", "--port", str(port), "-p", "say hi", "--model", "haiku", "--", "--port", "1",
                 env=_env(state, PATH=_path(bin_dir)))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    # Everything after code's own options is Claude Code's, "--" and all that follows included.
    assert lines[0] == "ARGS:-p say hi --model haiku -- --port 1"
    assert f"ANTHROPIC_BASE_URL=http://127.0.0.1:{port}" in lines
    assert "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1" in lines
    assert "CLAUDE_CODE_GATEWAY_HINT_HEADERS=1" in lines  # the config routes on request classes
    assert not any(line.startswith("ANTHROPIC_AUTH_TOKEN=") for line in lines)  # the client's login goes through
    assert result.err.startswith(f"gateway: started in the background at http://127.0.0.1:{port}")
    # The gateway stays for the next `gateway code`, which uses it.
    again = run("code", "--port", str(port), env=_env(state, PATH=_path(bin_dir)))
    assert again.code == 0 and again.err == "" and again.out.startswith("ARGS:\n")
    assert run("stop", "--port", str(port), env=_env(state)).code == 0


def test_code_sends_the_client_key_and_stands_in_for_a_login(run: Run, state: Path, bin_dir: Path, workdir: Path) -> None:
    _claude(bin_dir)
    port = free_port()
    (workdir / "routes.toml").write_text(ZAI_ONLY)
    env = _env(state, PATH=_path(bin_dir), GATEWAY_CLIENT_KEY="k-123", ZAI_API_KEY="z")
    result = run("code", "--port", str(port), env=env)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert "ANTHROPIC_CUSTOM_HEADERS=x-gateway-key: k-123" in lines
    assert "CLAUDE_CODE_GATEWAY_HINT_HEADERS=1" not in lines
    # No provider takes the client's credentials and there is no login: a placeholder, so
    # Claude Code does not ask for a login the gateway would never use.
    assert "ANTHROPIC_AUTH_TOKEN=gateway" in lines
    assert run("stop", "--port", str(port), env=_env(state)).code == 0


def test_code_without_claude_says_how_to_install_it_and_starts_nothing(run: Run, state: Path, bin_dir: Path) -> None:
    result = run("code", "--port", str(free_port()), env=_env(state, PATH=str(bin_dir)))
    assert result.code == 1
    assert result.err.splitlines() == [
        "Error: `claude` (Claude Code) is not installed, or not on the PATH: install it with "
        "`npm install -g @anthropic-ai/claude-code` (or see https://code.claude.com/docs), then run "
        "`gateway code` again"
    ]
    assert not state.exists() or list(state.glob("*.pid")) == []


def test_code_reuses_a_gateway_serving_another_config_and_says_so(
    run: Run, state: Path, bin_dir: Path, workdir: Path, tmp_path: Path
) -> None:
    _claude(bin_dir)
    port = str(free_port())
    other = tmp_path / "other"
    other.mkdir()
    (other / "routes.toml").write_text(CONDITIONAL)
    assert run("start", "--port", port, cwd=other, env=_env(state)).code == 0
    (workdir / "routes.toml").write_text(CONDITIONAL.replace('name = "default"', 'name = "rest"'))
    result = run("code", "--port", port, env=_env(state, PATH=_path(bin_dir)))
    assert result.code == 0 and f"ANTHROPIC_BASE_URL=http://127.0.0.1:{port}" in result.out
    assert result.err.startswith(
        f"gateway: note: the gateway at http://127.0.0.1:{port} does not serve {workdir / 'routes.toml'} (./routes.toml)"
    )
    assert f"it serves --config {other / 'routes.toml'}" in result.err
    assert run("stop", "--port", port, env=_env(state)).code == 0
