"""`gateway service`: systemd unit, launchd plist, Task Scheduler XML; install below a root only."""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from ops_support import run_cli

from gateway.ops.service import Outcome, install, status, uninstall
from gateway.ops.service_files import (
    LABEL,
    TASK_NAMESPACE,
    ServicePaths,
    ServiceSpec,
    render_launchd,
    render_systemd,
    render_task_xml,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lan.toml"
NS = {"t": TASK_NAMESPACE}


def spec(tmp_path: Path, name: str = "routes.toml") -> ServiceSpec:
    config = tmp_path / name
    return ServiceSpec(sys.executable, str(config), str(config.parent), str(tmp_path / "logs" / "gateway.log"), "HOST\\alice")


def unit_values(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]


def systemd_argv(exec_start: str) -> list[str]:
    """ExecStart split as systemd does for what we write: shell-like quoting, then %% and $$."""
    return [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(exec_start)]


def test_systemd_unit_runs_serve_with_config_and_log_file_and_restarts(tmp_path: Path) -> None:
    service = spec(tmp_path)
    text = render_systemd(service)

    assert systemd_argv(unit_values(text, "ExecStart")[0]) == [
        sys.executable, "-m", "gateway", "serve", "--config", service.config, "--log-file", service.log_file
    ]
    assert unit_values(text, "WorkingDirectory") == [str(tmp_path)]
    assert unit_values(text, "Restart") == ["on-failure"]
    assert unit_values(text, "WantedBy") == ["default.target"]
    # `systemctl --user reload`: SIGHUP, which the gateway takes as "reload routes.toml".
    assert unit_values(text, "ExecReload") == ["/bin/kill -HUP $MAINPID"]


def test_systemd_unit_quotes_spaces_percent_and_dollar(tmp_path: Path) -> None:
    odd = tmp_path / "my dir 100%" / "$HOME"
    odd.mkdir(parents=True)
    service = spec(odd, "routes copy.toml")

    text = render_systemd(service)
    argv = systemd_argv(unit_values(text, "ExecStart")[0])

    assert argv[5] == str(odd / "routes copy.toml")
    assert unit_values(text, "WorkingDirectory") == [str(odd).replace("%", "%%").replace("$", "$$")]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize("folder", ["plain", "with space 50%"])
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path, folder: str) -> None:
    directory = tmp_path / folder
    directory.mkdir()
    unit = tmp_path / "claude-gateway.service"
    unit.write_text(render_systemd(spec(directory)))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)

    done = subprocess.run(
        ["systemd-analyze", "--user", "verify", str(unit)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_LEVEL": "notice"},
    )
    if done.returncode != 0 and "Failed to initialize manager" in done.stderr:
        done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert str(unit) not in done.stderr, done.stderr  # no warning about our file (unknown keys, bad values)


def test_launchd_plist_parses_and_keeps_the_gateway_alive(tmp_path: Path) -> None:
    service = spec(tmp_path)

    plist = plistlib.loads(render_launchd(service))

    assert plist["Label"] == LABEL
    assert plist["ProgramArguments"] == [sys.executable, *service.arguments]
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["WorkingDirectory"] == str(tmp_path)
    assert plist["StandardErrorPath"] == str(tmp_path / "logs" / "launchd.stderr.log")
    assert "--log-file" in plist["ProgramArguments"]


def test_task_scheduler_xml_parses_and_runs_at_logon_with_restarts(tmp_path: Path) -> None:
    service = spec(tmp_path / "Program Files")
    data = render_task_xml(service)

    root = ET.fromstring(data)

    assert data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff")  # UTF-16 with a BOM
    assert root.tag == f"{{{TASK_NAMESPACE}}}Task"
    assert root.find("t:Triggers/t:LogonTrigger/t:UserId", NS).text == "HOST\\alice"  # type: ignore[union-attr]
    assert root.find("t:Settings/t:RestartOnFailure/t:Count", NS).text == "999"  # type: ignore[union-attr]
    assert root.find("t:Settings/t:ExecutionTimeLimit", NS).text == "PT0S"  # type: ignore[union-attr]
    assert root.find("t:Settings/t:DisallowStartIfOnBatteries", NS).text == "false"  # type: ignore[union-attr]
    execute = root.find("t:Actions/t:Exec", NS)
    assert execute is not None
    assert execute.find("t:Command", NS).text == sys.executable  # type: ignore[union-attr]
    arguments = execute.find("t:Arguments", NS).text  # type: ignore[union-attr]
    assert f'--config "{service.config}"' in arguments  # quoted: the path has a space
    assert execute.find("t:WorkingDirectory", NS).text == service.workdir  # type: ignore[union-attr]


class Recorder:
    def __init__(self, code: int = 0) -> None:
        self.commands: list[list[str]] = []
        self.code = code

    def __call__(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        self.commands.append(list(command))
        return subprocess.CompletedProcess(command, self.code, "active (running)", "")


def test_install_on_linux_enables_and_starts_the_user_unit(tmp_path: Path) -> None:
    paths = ServicePaths(tmp_path / "systemd" / "claude-gateway.service", tmp_path / "logs" / "gateway.log")
    run = Recorder()

    outcome = install("linux", spec(tmp_path), paths, rooted=False, run=run)

    assert run.commands == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "claude-gateway.service"],
    ]
    assert paths.service_file.read_text() == render_systemd(spec(tmp_path))
    assert any("loginctl enable-linger" in line for line in outcome.lines)


def test_uninstall_and_status_drive_the_service_manager(tmp_path: Path) -> None:
    paths = ServicePaths(tmp_path / "claude-gateway.service", tmp_path / "gateway.log")
    paths.service_file.write_text("x")
    run = Recorder()

    shown = status("linux", paths, rooted=False, run=run)
    removed = uninstall("linux", paths, rooted=False, run=run)
    missing = status("linux", paths, rooted=False, run=run)

    assert shown == Outcome([f"Installed: {paths.service_file}", f"Log file: {paths.log_file}", "active (running)"], 0)
    assert ["systemctl", "--user", "disable", "--now", "claude-gateway.service"] in run.commands
    assert not paths.service_file.exists() and removed.code == 0
    assert missing.code == 1


# --- through the command line, always below --root ------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "relative"),
    [
        ("linux", ".config/systemd/user/claude-gateway.service"),
        ("macos", "Library/LaunchAgents/local.claude-gateway.plist"),
        ("windows", "AppData/Local/claude-gateway/claude-gateway-task.xml"),
    ],
)
def test_cli_install_status_uninstall_below_a_root(tmp_path: Path, platform: str, relative: str) -> None:
    root = tmp_path / "root"
    work = tmp_path / "work"
    work.mkdir()
    config = work / "routes.toml"
    config.write_text(EXAMPLE.read_text())
    (work / ".env").write_text("ZAI_API_KEY=zai-secret-0f3c9a7d5e1b4c2a\n")

    installed = run_cli("service", "install", "--config", "routes.toml", "--root", str(root), "--platform", platform,
                        home=tmp_path, cwd=work)
    checked = run_cli("service", "status", "--root", str(root), "--platform", platform, home=tmp_path, cwd=work)
    removed = run_cli("service", "uninstall", "--root", str(root), "--platform", platform, home=tmp_path, cwd=work)
    after = run_cli("service", "status", "--root", str(root), "--platform", platform, home=tmp_path, cwd=work)

    assert installed.code == 0, installed.text
    assert f"Wrote {root / relative}" in installed.out
    assert "Not started (--root)" in installed.out
    # GATEWAY_CLIENT_KEY is read by the config but is not in .env: the service would not see it.
    assert "put GATEWAY_CLIENT_KEY in" in installed.out and "ZAI_API_KEY" not in installed.out.split("Wrote")[0]
    assert checked.code == 0 and f"Installed: {root / relative}" in checked.out
    assert removed.code == 0 and not (root / relative).exists()
    assert after.code == 1 and "Not installed" in after.out


def test_cli_install_pins_the_config_by_absolute_path(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "routes.toml").write_text(EXAMPLE.read_text())

    done = run_cli("service", "install", "--root", str(tmp_path / "root"), "--platform", "linux", home=tmp_path, cwd=work)
    unit = (tmp_path / "root" / ".config/systemd/user/claude-gateway.service").read_text()

    assert done.code == 0, done.text
    assert systemd_argv(unit_values(unit, "ExecStart")[0])[4:6] == ["--config", str(work / "routes.toml")]
    assert unit_values(unit, "WorkingDirectory") == [str(work)]
    assert str(tmp_path / "root" / ".local/state/claude-gateway/gateway.log") in unit


def test_cli_install_refuses_an_invalid_config_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "routes.toml").write_text("version = 2\n")

    done = run_cli("service", "install", "--root", str(tmp_path / "root"), "--platform", "linux",
                   home=tmp_path, cwd=tmp_path)

    assert done.code == 1
    assert "Error: the config is not usable, so no service was installed" in done.err
    assert "routes.toml:1: version" in done.err
    assert not (tmp_path / "root").exists()


def test_cli_print_shows_the_file_without_writing(tmp_path: Path) -> None:
    (tmp_path / "routes.toml").write_text(EXAMPLE.read_text())

    done = run_cli("service", "install", "--print", "--platform", "macos", home=tmp_path, cwd=tmp_path)

    assert done.code == 0, done.text
    assert plistlib.loads(done.out.encode())["Label"] == LABEL
    assert not (tmp_path / "Library").exists()


def test_cli_refuses_another_platform_on_the_real_system(tmp_path: Path) -> None:
    other = "macos" if sys.platform.startswith("linux") else "linux"

    done = run_cli("service", "status", "--platform", other, home=tmp_path, cwd=tmp_path)

    assert done.code == 1
    assert f"--platform {other} on " in done.err and "--root DIR" in done.err


def test_service_root_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "routes.toml").write_text(EXAMPLE.read_text())

    done = run_cli("service", "install", "--platform", "linux", home=tmp_path, cwd=tmp_path,
                   env={"GATEWAY_SERVICE_ROOT": str(tmp_path / "envroot")})

    assert done.code == 0, done.text
    assert (tmp_path / "envroot" / ".config/systemd/user/claude-gateway.service").exists()
