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
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from gateway.errors import UserError
from gateway.ops.service_files import (
    LABEL,
    NAME,
    Platform,
    ServicePaths,
    ServiceSpec,
    current_platform,
    render,
    service_paths,
)

__all__ = [
    "Outcome",
    "ServiceError",
    "command",
    "default_python",
    "install",
    "plan",
    "status",
    "uninstall",
]

ROOT_ENV = "GATEWAY_SERVICE_ROOT"
Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class ServiceError(UserError):
    """A service operation that cannot be done; the message says what to do instead."""


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
    from gateway.settings import load_config
    from rules.discover import parse_dotenv
    from rules.errors import ConfigError

    rooted = root is not None
    home = root if root is not None else Path.home()
    paths = service_paths(platform, home, env, rooted=rooted)
    try:
        loaded = load_config(config, env, cwd)
    except ConfigError as exc:
        raise ServiceError(
            f"the config is not usable, so no service was installed:\n{exc.render()}"
        ) from None
    found, ruleset = loaded.discovery, loaded.ruleset
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
