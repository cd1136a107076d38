"""``gateway start``, ``stop`` and ``status``: a gateway in the background, one per address.

``start`` runs ``gateway serve`` (with serve's options) as a detached process in its own session
(a closed terminal does not end it), logging to a file, and writes a pid file in the user's
state directory (``gateway.paths.state_dir``), named after the address:
``gateway-127.0.0.1-8082.pid``, a JSON document with the pid, URL, config, log file and start
time. It returns once the gateway answers ``/health`` (polled with a deadline), or prints the
gateway's own one-line error when it exits first.

``stop`` and ``status`` find the gateway by the address the same ``--config``/``--host``/
``--port`` give (or the config found as ``serve`` finds it). ``stop`` sends SIGTERM, waits for
the process to end (SIGKILL after ``STOP_TIMEOUT_S``) and removes the pid file. ``status`` exits 0
when it runs, 3 when it does not (as ``systemctl status``).

``gateway code`` uses ``ensure_running`` to start one when nothing answers at the address.
Only the standard library and the gateway's light modules: no Sanic, no httpx.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import ConfigFailure, UserError
from gateway.ops import http
from gateway.paths import state_dir
from gateway.settings import FoundConfig, listen_address, load_config, local_url
from gateway.timefmt import ago, duration, iso
from rules.errors import ConfigError

__all__ = [
    "STATE_ENV",
    "START_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "Background",
    "Instance",
    "ensure_running",
    "find",
    "gateway_answer",
    "start",
    "status",
    "stop",
]

STATE_ENV = "GATEWAY_STATE_DIR"  # overrides the state directory (tests, several setups side by side)
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
_POLL_S = 0.05


@dataclass(frozen=True)
class Instance:
    """Where one background gateway is, or would be: its address and its files."""

    host: str
    port: int
    url: str
    pid_file: Path
    log_file: Path
    err_file: Path  # what it prints before its log file is open (a start-up failure)
    found: FoundConfig | None  # None when the config could not be loaded (stop still works)


@dataclass(frozen=True)
class Background:
    """What a pid file says."""

    pid: int
    url: str
    config: str
    log: str
    started: float

    @classmethod
    def read(cls, path: Path) -> Background | None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return cls(int(doc["pid"]), str(doc["url"]), str(doc["config"]), str(doc["log"]), float(doc["started"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        doc = {"pid": self.pid, "url": self.url, "config": self.config, "log": self.log,
               "started": self.started, "started_at": iso(self.started)}
        temporary.write_text(json.dumps(doc) + "\n", encoding="utf-8")
        os.replace(temporary, path)


def _state(env: Mapping[str, str]) -> Path:
    override = env.get(STATE_ENV)
    if override:
        return Path(override).expanduser()
    return state_dir(env, home=Path(env["HOME"]) if env.get("HOME") else None)


def find(config: str | None, host: str | None, port: int | None, env: Mapping[str, str], cwd: Path) -> Instance:
    """The instance for these options: the address they give, and its files.

    The config is loaded as ``serve`` loads it. When it cannot be (broken while the gateway
    runs), ``--port`` (and ``--host``) still name the address; without them it is a ConfigFailure.
    """
    found: FoundConfig | None
    try:
        found = load_config(config, env, cwd)
        where = listen_address(found.ruleset, host, port)
    except ConfigError as exc:
        if port is None:
            raise ConfigFailure(exc) from None
        found, where = None, listen_address(None, host, port)
    name = f"gateway-{where[0].replace(':', '_')}-{where[1]}"
    state = _state(env)
    return Instance(where[0], where[1], local_url(*where), state / f"{name}.pid", state / f"{name}.log",
                    state / f"{name}.err", found)


def gateway_answer(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """The /health document of a gateway answering at ``url``, or None (nothing, or not a gateway)."""
    try:
        doc = http.request("GET", url + "/health", timeout=timeout).json()
    except (http.Unreachable, ValueError):
        return None
    return doc if isinstance(doc, dict) and "config" in doc and "version" in doc else None


def _alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill(pid, 0) would end it there: callers ask /health instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to signal
    if sys.platform.startswith("linux"):
        # A reused pid is not our gateway: its command line must name it.
        try:
            return b"gateway" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
    return True


def _running(instance: Instance) -> Background | None:
    """The pid file's gateway if its process is alive; a stale pid file is removed."""
    record = Background.read(instance.pid_file)
    if record is None:
        return None
    if _alive(record.pid):
        return record
    instance.pid_file.unlink(missing_ok=True)
    return None


def _serve_argv(instance: Instance, options: Sequence[str]) -> list[str]:
    """``python -m gateway serve`` for the instance: the config pinned, the address and log file set."""
    argv = [sys.executable, "-m", "gateway", "serve"]
    found = instance.found
    if found is not None and found.discovery.path is not None:
        argv += ["--config", str(found.discovery.path.resolve())]
    return argv + ["--host", instance.host, "--port", str(instance.port), "--log-file", str(instance.log_file),
                   *options]


def start(instance: Instance, options: Sequence[str], env: Mapping[str, str], cwd: Path,
          timeout: float = START_TIMEOUT_S) -> tuple[Background, bool]:
    """Start the instance in the background unless a gateway already answers at its address.

    Returns its record and whether it was started now. Raises UserError with the gateway's own
    error when it exits before it answers, or when it does not answer in ``timeout`` seconds.
    """
    running = _running(instance)
    answering = gateway_answer(instance.url)
    if running is not None:
        if answering is not None:
            return running, False
        raise UserError(f"a background gateway (pid {running.pid}) runs for {instance.url} but does not answer "
                        f"/health: see its log {running.log}, or `gateway stop` it")
    if answering is not None:
        # A foreground `gateway serve` or the service: use it, it is not ours to manage.
        origin = answering.get("config", {}).get("reason", "another config")
        return Background(int(answering.get("pid", 0)), instance.url, str(origin), "", time.time()), False
    instance.pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(instance.err_file, "wb") as err:
        process = subprocess.Popen(
            _serve_argv(instance, options), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
            stdout=err, stderr=subprocess.STDOUT, start_new_session=True,
        )
    config = instance.found.origin if instance.found is not None else "?"
    record = Background(process.pid, instance.url, config, str(instance.log_file), time.time())
    record.write(instance.pid_file)
    deadline = time.monotonic() + timeout
    while gateway_answer(instance.url, timeout=0.5) is None:
        if process.poll() is not None:
            instance.pid_file.unlink(missing_ok=True)
            raise UserError(f"the gateway did not start: {_last_error(instance.err_file)}")
        if time.monotonic() >= deadline:
            _terminate(process.pid)
            instance.pid_file.unlink(missing_ok=True)
            raise UserError(f"the gateway did not answer {instance.url}/health within {timeout:g} s; "
                            f"its log: {instance.log_file}")
        time.sleep(_POLL_S)
    return record, True


def _last_error(err_file: Path) -> str:
    """The gateway's own one-line error ("Error: ..." without the prefix), else its last line."""
    try:
        lines = [line.strip() for line in err_file.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        lines = []
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.startswith("Error: ")]
    if errors:
        return errors[-1][len("Error: "):].removesuffix("; the gateway did not start")
    return lines[-1] if lines else f"it exited without a word (see {err_file})"


def _terminate(pid: int, timeout: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM, wait for the end, then SIGKILL; True if it had to be killed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _gone(pid):
            time.sleep(_POLL_S)
            continue
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def _gone(pid: int) -> bool:
    if os.name == "nt":
        return True  # SIGTERM there is TerminateProcess: it does not outlive the call
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # our own child (reaped), in tests and `start`
        if finished == pid:
            return True
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def stop(instance: Instance) -> tuple[list[str], int]:
    """Stop the instance's background gateway: lines for the user, exit code."""
    record = _running(instance)
    if record is None:
        answering = gateway_answer(instance.url)
        if answering is not None:
            return [f"A gateway answers at {instance.url} (pid {answering.get('pid')}), but `gateway start` did "
                    "not start it: stop it where it runs (Ctrl-C, or `gateway service uninstall`)."], 1
        return [f"No background gateway for {instance.url}: nothing to stop."], 0
    killed = _terminate(record.pid)
    instance.pid_file.unlink(missing_ok=True)
    how = "killed after it did not stop in time" if killed else "stopped"
    return [f"Gateway {how}: {record.url} (pid {record.pid}, up {duration(time.time() - record.started)})."], 0


def status(instance: Instance) -> tuple[list[str], int]:
    """Whether a gateway runs at the instance's address: lines for the user, exit code (0, or 3)."""
    record = _running(instance)
    answering = gateway_answer(instance.url)
    if record is None and answering is None:
        return [f"Not running: nothing answers at {instance.url}. Start it with `gateway start` "
                "(or `gateway code`)."], 3
    if record is None:
        assert answering is not None
        return [f"Running at {instance.url} (pid {answering.get('pid')}), not started by `gateway start` "
                "(a `gateway serve` or the service)."] + _describe(answering), 0
    lines = [f"Running in the background at {record.url} (pid {record.pid}, started "
             f"{ago(time.time() - record.started)})", f"Log: {record.log}"]
    if answering is None:
        return lines + ["It does not answer /health yet (starting, or stuck): see its log."], 0
    return lines + _describe(answering), 0


def _describe(doc: Mapping[str, Any]) -> list[str]:
    config = doc.get("config") or {}
    line = f"Config: {config.get('reason') or config.get('source')}, generation {config.get('generation')}"
    error = config.get("last_error")
    if isinstance(error, dict):
        line += f"; the last reload failed: {error.get('message')}"
    return [line]


def ensure_running(instance: Instance, env: Mapping[str, str], cwd: Path) -> tuple[Background, bool]:
    """The gateway at the instance's address: the one answering there, or one started now."""
    return start(instance, (), env, cwd)
