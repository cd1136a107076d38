"""``gateway service install|uninstall|status``: run the gateway at login, restart it on failure.

One service per user, named ``claude-gateway``, in the user's own service manager (no root or
administrator rights needed):

- Linux: a systemd user unit, ``~/.config/systemd/user/claude-gateway.service``, enabled and
  started with ``systemctl --user``. It starts at login; ``loginctl enable-linger $USER`` makes
  it start at boot without a login.
- macOS: a launchd agent, ``~/Library/LaunchAgents/local.claude-gateway.plist``, loaded with
  ``launchctl bootstrap gui/$UID``; it starts at login.
- Windows: a Task Scheduler task, ``claude-gateway``, registered with ``schtasks /Create /XML``
  from ``%LOCALAPPDATA%\\claude-gateway\\claude-gateway-task.xml``; it starts at logon.

Each runs ``python -m gateway serve --config F --log-file L`` with the Python running this
command, in the config's directory (so a ``.env`` next to routes.toml is read: a service does
not see the shell's environment), restarts it when it fails, and logs to a size-rotated file.

``root`` (``--root DIR`` or ``$GATEWAY_SERVICE_ROOT``) stands in for the home directory: files
are written below it and no service manager is run. Tests use it; so can packagers.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path, PurePath, PureWindowsPath
from typing import Callable, Literal, Mapping, Sequence

__all__ = [
    "LABEL",
    "NAME",
    "command",
    "current_platform",
    "default_python",
    "install",
    "Outcome",
    "plan",
    "Platform",
    "render",
    "render_launchd",
    "render_systemd",
    "render_task_xml",
    "service_paths",
    "ServiceError",
    "ServicePaths",
    "ServiceSpec",
    "status",
    "uninstall",
]

NAME = "claude-gateway"
LABEL = f"local.{NAME}"  # launchd labels are reverse-DNS; "local." is for what is not published
TASK_NAMESPACE = "http://schemas.microsoft.com/windows/2004/02/mit/task"
ROOT_ENV = "GATEWAY_SERVICE_ROOT"

Platform = Literal["linux", "macos", "windows"]
Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class ServiceError(Exception):
    """A service operation that cannot be done; the message says what to do instead."""


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
    if platform == "linux":
        config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") and not rooted else home / ".config"
        state_home = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") and not rooted else home / ".local" / "state"
        return ServicePaths(config_home / "systemd" / "user" / f"{NAME}.service", state_home / NAME / "gateway.log")
    if platform == "macos":
        return ServicePaths(
            home / "Library" / "LaunchAgents" / f"{LABEL}.plist", home / "Library" / "Logs" / NAME / "gateway.log"
        )
    local = Path(env["LOCALAPPDATA"]) if env.get("LOCALAPPDATA") and not rooted else home / "AppData" / "Local"
    return ServicePaths(local / NAME / f"{NAME}-task.xml", local / NAME / "gateway.log")


# --- rendering ------------------------------------------------------------------------------

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


# --- the service manager ------------------------------------------------------------------------

def _run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(command), capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise ServiceError(f"`{command[0]}` was not found: is this the right platform for this service?") from None


def _checked(run: Runner, command: Sequence[str]) -> None:
    done = run(command)
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        raise ServiceError(f"`{shlex.join(command)}` failed (exit {done.returncode}): {output}")


def _start_commands(platform: Platform, paths: ServicePaths) -> list[list[str]]:
    if platform == "linux":
        return [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", f"{NAME}.service"]]
    if platform == "macos":
        return [["launchctl", "bootstrap", f"gui/{os.getuid()}", str(paths.service_file)]]
    return [
        ["schtasks", "/Create", "/TN", NAME, "/XML", str(paths.service_file), "/F"],
        ["schtasks", "/Run", "/TN", NAME],
    ]


def _stop_commands(platform: Platform) -> list[list[str]]:
    if platform == "linux":
        return [["systemctl", "--user", "disable", "--now", f"{NAME}.service"]]
    if platform == "macos":
        return [["launchctl", "bootout", f"gui/{os.getuid()}/{LABEL}"]]
    return [["schtasks", "/End", "/TN", NAME], ["schtasks", "/Delete", "/TN", NAME, "/F"]]


def _status_command(platform: Platform) -> list[str]:
    if platform == "linux":
        return ["systemctl", "--user", "status", "--no-pager", f"{NAME}.service"]
    if platform == "macos":
        return ["launchctl", "print", f"gui/{os.getuid()}/{LABEL}"]
    return ["schtasks", "/Query", "/TN", NAME, "/V", "/FO", "LIST"]


@dataclass(frozen=True)
class Outcome:
    """What an operation did, as lines for the user, and the exit code."""

    lines: list[str]
    code: int = 0


def install(
    platform: Platform, spec: ServiceSpec, paths: ServicePaths, *, rooted: bool, run: Runner = _run
) -> Outcome:
    """Write the service file and (unless ``rooted``) enable and start the service."""
    if platform == "macos" and not rooted:
        # A loaded agent must be booted out before a changed plist is bootstrapped again.
        run(["launchctl", "bootout", f"gui/{os.getuid()}/{LABEL}"])
    paths.service_file.parent.mkdir(parents=True, exist_ok=True)
    Path(spec.log_file).parent.mkdir(parents=True, exist_ok=True)
    temporary = paths.service_file.with_name(paths.service_file.name + ".tmp")
    temporary.write_bytes(render(platform, spec))
    os.replace(temporary, paths.service_file)
    lines = [f"Wrote {paths.service_file}", f"Log file: {spec.log_file}"]
    if rooted:
        lines.append("Not started (--root): no service manager was run.")
        return Outcome(lines)
    for command in _start_commands(platform, paths):
        _checked(run, command)
    lines.append(f"Started the {NAME} service; it starts again at login and after a failure.")
    if platform == "linux":
        lines.append(f"To start it at boot without logging in: loginctl enable-linger {os.environ.get('USER', '$USER')}")
    return Outcome(lines)


def uninstall(platform: Platform, paths: ServicePaths, *, rooted: bool, run: Runner = _run) -> Outcome:
    """Stop and disable the service (unless ``rooted``) and remove its file."""
    lines: list[str] = []
    if not rooted:
        for command in _stop_commands(platform):
            run(command)  # stopping what is not running is fine
        if platform == "linux":
            run(["systemctl", "--user", "daemon-reload"])
    if paths.service_file.exists():
        paths.service_file.unlink()
        lines.append(f"Removed {paths.service_file}")
    else:
        lines.append(f"No service file at {paths.service_file}: nothing to remove")
    lines.append(f"The log file stays: {paths.log_file}")
    return Outcome(lines)


def status(platform: Platform, paths: ServicePaths, *, rooted: bool, run: Runner = _run) -> Outcome:
    """Whether the service is installed, and (unless ``rooted``) what the service manager says."""
    if not paths.service_file.exists():
        return Outcome([f"Not installed: no {paths.service_file}", "Install it with `gateway service install`."], 1)
    lines = [f"Installed: {paths.service_file}", f"Log file: {paths.log_file}"]
    if rooted:
        return Outcome(lines)
    done = run(_status_command(platform))
    lines += [line for line in (done.stdout or done.stderr).rstrip().splitlines()]
    return Outcome(lines, 0 if done.returncode == 0 else 3)


def default_python(platform: Platform) -> str:
    """The interpreter the service runs: this one (on Windows its windowless twin, if present)."""
    python = sys.executable
    if platform == "windows" and current_platform() == "windows":
        windowless = PureWindowsPath(python).with_name("pythonw.exe")
        if Path(str(windowless)).exists():
            return str(windowless)
    return python


def _needed_variables(ruleset: object) -> list[str]:
    """Environment variables the config's key sources read (providers and client keys)."""
    from rules.model import RuleSet

    assert isinstance(ruleset, RuleSet)
    names: list[str] = []
    sources = [s for p in ruleset.providers.values() for s in p.key] + list(ruleset.server.client_keys)
    for source in sources:
        if source.kind == "env" and source.ref not in names:
            names.append(source.ref)
    return names


def plan(
    config: str | None,
    env: Mapping[str, str],
    cwd: Path,
    platform: Platform,
    root: Path | None,
) -> tuple[ServiceSpec, ServicePaths, list[str]]:
    """What ``install`` would write: the spec, the paths, and warnings to show first.

    The config is found as ``serve`` finds it, checked, and pinned by its absolute path; the
    service runs in its directory. Raises ServiceError for a config that is missing or invalid.
    """
    from rules.discover import discover, load_discovered, parse_dotenv
    from rules.errors import ConfigError

    rooted = root is not None
    home = root if root is not None else Path.home()
    paths = service_paths(platform, home, env, rooted=rooted)
    try:
        found = discover(config, env, cwd)
        ruleset = load_discovered(found, env)
    except ConfigError as exc:
        raise ServiceError(
            f"the config is not usable, so no service was installed:\n{exc.render()}"
        ) from None
    warnings: list[str] = []
    config_path: str | None = None
    workdir = str(cwd)
    if found.path is not None:
        config_path = os.path.abspath(cwd / found.path)
        workdir = os.path.dirname(config_path)
    else:
        warnings.append(
            f"no routes.toml found ({found.reason}): the service will run in {workdir} and find its "
            "config there when it starts; pass --config to pin one"
        )
    dotenv = Path(workdir) / ".env"
    try:
        defined = parse_dotenv(dotenv.read_text(encoding="utf-8"))
    except OSError:
        defined = {}
    missing = [name for name in _needed_variables(ruleset) if name not in defined]
    if missing:
        warnings.append(
            f"a service does not see this shell's environment: put {', '.join(missing)} in {dotenv} "
            f"(NAME=value lines; then chmod 600 {dotenv}), or the service starts without "
            f"{'that key' if len(missing) == 1 else 'those keys'}"
        )
    user = None
    if platform == "windows" and env.get("USERNAME"):
        user = f"{env['USERDOMAIN']}\\{env['USERNAME']}" if env.get("USERDOMAIN") else env["USERNAME"]
    spec = ServiceSpec(default_python(platform), config_path, workdir, str(paths.log_file), user)
    return spec, paths, warnings


def command(
    action: str,
    *,
    config: str | None,
    root: str | None,
    platform: str | None,
    show: bool,
    env: Mapping[str, str],
    cwd: Path,
) -> Outcome:
    """``gateway service ACTION``: install, uninstall or status; ``show`` prints the file instead."""
    root = root or env.get(ROOT_ENV) or None
    here = current_platform()
    target: Platform = platform if platform in ("linux", "macos", "windows") else here  # type: ignore[assignment]
    if target != here and root is None and not show:
        raise ServiceError(
            f"--platform {target} on {here}: the file can only be written below --root DIR or shown with --print"
        )
    root_path = Path(root).expanduser().resolve() if root else None
    rooted = root_path is not None
    if action == "install" or show:
        spec, paths, warnings = plan(config, env, cwd, target, root_path)
        if show:
            data = render(target, spec)
            return Outcome([data.decode("utf-16" if target == "windows" else "utf-8").rstrip("\n")])
        outcome = install(target, spec, paths, rooted=rooted)
        return Outcome([f"Warning: {w}" for w in warnings] + outcome.lines, outcome.code)
    paths = service_paths(target, root_path or Path.home(), env, rooted=rooted)
    if action == "uninstall":
        return uninstall(target, paths, rooted=rooted)
    return status(target, paths, rooted=rooted)
