"""The service files of ``gateway service``: a systemd user unit, a launchd agent, a scheduled task.

What each platform's file says and where it goes, without running anything (``gateway.ops.service``
installs them). Each runs ``python -m gateway serve --config F --log-file L`` with the Python
running the command, in the config's directory, and restarts it when it fails.
"""

from __future__ import annotations

import plistlib
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Literal

from gateway.paths import APP_NAME, state_dir

__all__ = [
    "LABEL",
    "NAME",
    "TASK_NAMESPACE",
    "Platform",
    "ServicePaths",
    "ServiceSpec",
    "current_platform",
    "render",
    "render_launchd",
    "render_systemd",
    "render_task_xml",
    "service_paths",
]

NAME = APP_NAME
LABEL = f"local.{NAME}"  # launchd labels are reverse-DNS; "local." is for what is not published
TASK_NAMESPACE = "http://schemas.microsoft.com/windows/2004/02/mit/task"

Platform = Literal["linux", "macos", "windows"]


def current_platform() -> Platform:
    if sys.platform == "darwin":
        return "macos"
    if sys.platform.startswith("win"):
        return "windows"
    return "linux"


@dataclass(frozen=True)
class ServiceSpec:
    """What the service runs: the interpreter, the config, where to run and log."""

    python: str  # absolute path of the interpreter that has the gateway installed
    config: str | None  # absolute path, or None: the service finds the config as serve does
    workdir: str  # working directory: where ./.env and ./routes.toml are looked for
    log_file: str  # absolute path
    user: str | None = None  # Windows: DOMAIN\\user the task runs as (None: whoever registers it)

    @property
    def arguments(self) -> list[str]:
        """The command line after the interpreter."""
        args = ["-m", "gateway", "serve"]
        if self.config:
            args += ["--config", self.config]
        return args + ["--log-file", self.log_file]


@dataclass(frozen=True)
class ServicePaths:
    """Where one platform's service file and log go, below a home directory."""

    service_file: Path
    log_file: Path


def service_paths(platform: Platform, home: Path, env: Mapping[str, str], *, rooted: bool) -> ServicePaths:
    """The service file and the log file for ``platform`` (XDG and LOCALAPPDATA honoured unless rooted)."""
    state = state_dir(env, platform=platform, home=home, rooted=rooted)  # the ledger's directory too
    if platform == "linux":
        config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") and not rooted else home / ".config"
        return ServicePaths(config_home / "systemd" / "user" / f"{NAME}.service", state / "gateway.log")
    if platform == "macos":
        # Logs go where Console.app looks for them, not to the state directory.
        return ServicePaths(
            home / "Library" / "LaunchAgents" / f"{LABEL}.plist", home / "Library" / "Logs" / NAME / "gateway.log"
        )
    return ServicePaths(state / f"{NAME}-task.xml", state / "gateway.log")



def _systemd_escape(value: str) -> str:
    # Specifiers (%) and variables ($) would be expanded by systemd.
    return value.replace("%", "%%").replace("$", "$$")


def _systemd_word(value: str) -> str:
    value = _systemd_escape(value)
    if value and not any(c in value for c in " \t\n\"'\\;"):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_systemd(spec: ServiceSpec) -> str:
    """The systemd user unit."""
    command = " ".join(_systemd_word(w) for w in [spec.python, *spec.arguments])
    return f"""\
# Written by `gateway service install`; remove it with `gateway service uninstall`.
# Logs: {_systemd_escape(spec.log_file)} (rotated by size), and `journalctl --user -u {NAME}`.
[Unit]
Description=Claude gateway: routes each Claude Code model to its provider
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=exec
WorkingDirectory={_systemd_escape(spec.workdir)}
ExecStart={command}
# `systemctl --user reload {NAME}`: the gateway reloads routes.toml on SIGHUP, as on a change.
ExecReload=/bin/kill -HUP $MAINPID
Environment=PYTHONUNBUFFERED=1
Restart=on-failure
RestartSec=5
TimeoutStopSec=30

[Install]
WantedBy=default.target
"""


def render_launchd(spec: ServiceSpec) -> bytes:
    """The launchd agent's property list (XML)."""
    log_dir = str(PurePath(spec.log_file).parent)
    document = {
        "Label": LABEL,
        "ProgramArguments": [spec.python, *spec.arguments],
        "WorkingDirectory": spec.workdir,
        "RunAtLoad": True,
        # Restart when it exits with a failure or crashes; a clean stop stays stopped.
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 10,
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
        # What the process prints before its log file is open (a crash at start).
        "StandardOutPath": f"{log_dir}/launchd.stdout.log",
        "StandardErrorPath": f"{log_dir}/launchd.stderr.log",
    }
    return plistlib.dumps(document, fmt=plistlib.FMT_XML)


def render_task_xml(spec: ServiceSpec) -> bytes:
    """The Task Scheduler task, UTF-16 encoded as ``schtasks /Create /XML`` expects."""
    ET.register_namespace("", TASK_NAMESPACE)

    def sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        element = ET.SubElement(parent, f"{{{TASK_NAMESPACE}}}{tag}")
        if text is not None:
            element.text = text
        return element

    task = ET.Element(f"{{{TASK_NAMESPACE}}}Task", {"version": "1.2"})
    info = sub(task, "RegistrationInfo")
    sub(info, "Description", "Claude gateway: routes each Claude Code model to its provider. "
                             "Written by `gateway service install`.")
    sub(info, "URI", f"\\{NAME}")
    triggers = sub(task, "Triggers")
    logon = sub(triggers, "LogonTrigger")
    sub(logon, "Enabled", "true")
    if spec.user:
        sub(logon, "UserId", spec.user)
    principal = sub(sub(task, "Principals"), "Principal")
    principal.set("id", "Author")
    if spec.user:
        sub(principal, "UserId", spec.user)
    sub(principal, "LogonType", "InteractiveToken")
    sub(principal, "RunLevel", "LeastPrivilege")
    settings = sub(task, "Settings")
    for tag, text in (
        ("MultipleInstancesPolicy", "IgnoreNew"),
        ("DisallowStartIfOnBatteries", "false"),
        ("StopIfGoingOnBatteries", "false"),
        ("AllowHardTerminate", "true"),
        ("StartWhenAvailable", "true"),
        ("RunOnlyIfNetworkAvailable", "false"),
        ("AllowStartOnDemand", "true"),
        ("Enabled", "true"),
        ("Hidden", "false"),
        ("RunOnlyIfIdle", "false"),
        ("WakeToRun", "false"),
        ("ExecutionTimeLimit", "PT0S"),  # no limit: it is a server
        ("Priority", "5"),  # normal (the default, 7, is below normal)
    ):
        sub(settings, tag, text)
    idle = sub(settings, "IdleSettings")
    sub(idle, "StopOnIdleEnd", "false")
    sub(idle, "RestartOnIdle", "false")
    restart = sub(settings, "RestartOnFailure")
    sub(restart, "Interval", "PT1M")
    sub(restart, "Count", "999")
    actions = sub(task, "Actions")
    actions.set("Context", "Author")
    execute = sub(actions, "Exec")
    sub(execute, "Command", spec.python)
    sub(execute, "Arguments", subprocess.list2cmdline(spec.arguments))
    sub(execute, "WorkingDirectory", spec.workdir)
    ET.indent(task)
    text = ET.tostring(task, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-16"?>\n' + text + "\n").encode("utf-16")


def render(platform: Platform, spec: ServiceSpec) -> bytes:
    """The service file for ``platform``, as the bytes to write."""
    if platform == "linux":
        return render_systemd(spec).encode()
    if platform == "macos":
        return render_launchd(spec)
    return render_task_xml(spec)
