"""Start-up failures are one line and exit 1; the gateway says it listens only once it does.

A traceback after a log line that already claimed the gateway was listening is what a person
met with a busy port; under a service manager it repeated every restart.
"""

from __future__ import annotations

import errno
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from fakes.gateway import GATEWAY_SCRIPT, GatewayProcess, gateway_env
from gateway.server.serve import bind_failure


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GATEWAY_SCRIPT), "serve", *args], cwd=tmp_path, env=gateway_env(tmp_path),
        capture_output=True, text=True, timeout=60,
    )


def test_a_busy_port_is_one_line_and_exit_1(tmp_path: Path, busy_port: int) -> None:
    done = _serve(tmp_path, "--port", str(busy_port))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{busy_port}: the port is in use by another program: stop it, "
        "or choose another --port (or [server] port); the gateway did not start"
    ]
    assert done.stdout == ""


def test_a_port_held_by_a_gateway_names_it(tmp_path: Path, gateway_factory: Callable[..., GatewayProcess]) -> None:
    running = gateway_factory()
    done = _serve(tmp_path, "--port", str(running.port))
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert f"the port is in use by a gateway already running there (pid {running.proc.pid})" in line


def test_an_unreadable_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "dir.toml").mkdir()
    done = _serve(tmp_path, "--config", "dir.toml", "--port", "1")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("Error: dir.toml: config path is a directory") and line.endswith("the gateway did not start")


def test_an_unwritable_log_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = _serve(tmp_path, "--log-file", str(tmp_path / "file" / "gateway.log"), "--port", "1")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"Error: cannot write the log file {tmp_path / 'file' / 'gateway.log'}: ")


@pytest.mark.parametrize(
    ("port", "error", "fix"),
    [
        (80, OSError(errno.EACCES, "Permission denied"), "ports below 1024 need privileges: use --port 8082"),
        (8082, OSError(errno.EACCES, "Permission denied"), "permission denied (a firewall or security policy"),
        (8082, OSError(errno.EADDRNOTAVAIL, "Cannot assign"), "10.9.9.9 is not an address of this machine"),
        (8082, socket.gaierror(-2, "Name or service not known"), "'10.9.9.9' is not an address of this machine"),
    ],
)
def test_other_bind_failures_say_the_fix(port: int, error: OSError, fix: str) -> None:
    # Root may bind any port, so permission denied is shown through the function that words it.
    assert fix in bind_failure("10.9.9.9", port, error)


def test_the_listening_line_comes_once_the_port_answers(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "out.log"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [str(GATEWAY_SCRIPT), "serve", "--port", str(port)], cwd=tmp_path, env=gateway_env(tmp_path),
            stdout=sink, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while "listening on" not in out.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
                time.sleep(0.02)
            # Claimed: so it must answer now, on the first try.
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
            text = out.read_text()
            assert f"listening on http://127.0.0.1:{port} (pid {proc.pid})" in text
            assert text.index("starting (1 worker)") < text.index("listening on")
        finally:
            proc.terminate()
            proc.wait(10)
