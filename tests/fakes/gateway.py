"""The real gateway as a subprocess on a free loopback port, and SDK clients pointed at it.

    gw = start_gateway(config_text, workdir=tmp_path)      # or the `gateway_factory` fixture
    client = anthropic_client(gw, api_key="sk-client")
    ...
    gw.stop()

The process gets a controlled environment: PATH from the test process, HOME a fresh temporary
directory (so a developer's real ~/.claude credentials are never read), no CLAUDE_CONFIG_DIR,
no ANTHROPIC_* or GATEWAY_* variables unless the test passes them in `env`.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

import httpx

from .sockets import free_port

if TYPE_CHECKING:
    # Imported where used: the SDK takes seconds to import, and conftest imports this module
    # for every test run, unit tests included.
    import anthropic
    from anthropic import Omit

GATEWAY_SCRIPT = Path(sys.executable).with_name("gateway")

# Run in the child before exec: ask Linux to SIGKILL it when the test process dies, so a killed
# pytest run cannot leave gateways behind on the shared machine. Elsewhere it just execs.
_LAUNCHER = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):  # the parent died before prctl took effect
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""

_BIND_FAILURES = ("address already in use", "errno 98", "eaddrinuse")


@lru_cache(maxsize=1)
def ssl_context() -> ssl.SSLContext:
    """One shared default SSL context.

    Building one costs ~0.1 s (loading the CA bundle) and every new httpx / SDK client builds
    its own, although our targets are plain http on loopback: pass `verify=ssl_context()`.
    """
    return ssl.create_default_context()


class GatewayStartError(RuntimeError):
    """The gateway did not answer GET /health with 200 in time; the message has its output."""


class HasURL(Protocol):
    url: str


class RunningGateway:
    """What a test does with a running gateway, however it runs: `url`, `logs()` and the rest.

    `GatewayProcess` (a `gateway serve` subprocess) and `fakes.inprocess.InProcessGateway` (the
    app on a thread of the test process) both have `url`, `port`, `logs()` and `stop()`; these
    methods are theirs alike, so a test moves from one to the other by its fixture alone.
    """

    url: str
    port: int

    def logs(self) -> str:
        raise NotImplementedError

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """Poll the output until `text` appears; return the output (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            output = self.logs()
            if text in output:
                return output
            if time.monotonic() >= deadline:
                raise AssertionError(f"gateway output never showed {text!r} within {timeout}s:\n{output}")
            time.sleep(0.05)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One plain HTTP request to the gateway (no SDK), e.g. `gw.request("GET", "/v1/models")`."""
        kwargs.setdefault("timeout", 30.0)
        with httpx.Client(verify=ssl_context(), timeout=kwargs.pop("timeout")) as client:
            return client.request(method, self.url + path, **kwargs)

    def health(self) -> Any:
        """GET /health as JSON (AssertionError unless 200)."""
        response = self.request("GET", "/health", timeout=5.0)
        assert response.status_code == 200, f"/health answered {response.status_code}: {response.text}"
        return response.json()


@dataclass
class GatewayProcess(RunningGateway):
    """A running `gateway serve` subprocess.

    `url` is http://127.0.0.1:PORT; `config_path` is None when started without --config;
    `home` is the HOME the process sees; `cwd` its working directory.
    """

    url: str
    port: int
    proc: subprocess.Popen[bytes]
    argv: list[str]
    config_path: Path | None
    home: Path
    cwd: Path
    env: dict[str, str]
    stdout_path: Path
    stderr_path: Path
    _files: list[IO[bytes]] = field(default_factory=list, repr=False)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def logs(self) -> str:
        """Everything the process printed so far: stdout, then stderr."""
        return self.stdout() + self.stderr()

    def write_config(self, text: str) -> None:
        """Replace the config file atomically (write aside, rename), as editors do."""
        if self.config_path is None:
            raise ValueError("this gateway was started without --config")
        temporary = self.config_path.with_name(self.config_path.name + ".tmp")
        temporary.write_text(text)
        os.replace(temporary, self.config_path)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, wait up to `timeout`, then SIGKILL the process group; return the exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGINT)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None or _group_alive(self.proc.pid):
            # Workers (--workers N) share the process group: take them all down.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5.0)
        for handle in self._files:
            handle.close()
        self._files.clear()
        return int(self.proc.returncode)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def gateway_env(home: Path, overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The child's environment: a minimal base plus `overrides` (a None value removes a name)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    for name, value in (overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def start_gateway(
    config_text: str | None,
    *,
    workdir: Path,
    env: Mapping[str, str | None] | None = None,
    args: Sequence[str] = (),
    cwd: Path | None = None,
    watch: bool = False,
    home: Path | None = None,
    command: Sequence[str] | None = None,
    startup_timeout: float = 20.0,
) -> GatewayProcess:
    """Start `gateway serve` and wait until GET /health answers 200.

    - `config_text`: written to `workdir/config/routes.toml` and passed as --config; None
      starts without --config (discovery: $GATEWAY_CONFIG, ./routes.toml in `cwd`, legacy env,
      embedded default).
    - `workdir`: a directory this call owns; it gets config/, home/, cwd/ and the logs.
    - `env`: extra variables for the child (None values remove); `args`: extra CLI arguments;
    - `cwd`: the working directory (default `workdir/cwd`, empty); `home`: HOME (default
      `workdir/home`, empty); `watch=False` adds --no-watch;
    - `command`: the program to run instead of the `gateway` console script next to
      sys.executable (the rest of the argv is the same).
    Raises GatewayStartError with the process output if it exits or stays unhealthy.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    home = home if home is not None else _fresh_dir(workdir / "home")
    cwd = cwd if cwd is not None else _fresh_dir(workdir / "cwd")
    config_path: Path | None = None
    if config_text is not None:
        config_path = _fresh_dir(workdir / "config") / "routes.toml"
        config_path.write_text(config_text)
    program = list(command) if command is not None else [str(GATEWAY_SCRIPT)]
    child_env = gateway_env(home, env)

    last_error: GatewayStartError | None = None
    for attempt in range(3):
        # Another process may take the port between free_port() and the bind: retry then.
        port = free_port()
        argv = [*program, "serve"]
        if config_path is not None:
            argv += ["--config", str(config_path)]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
        if not watch:
            argv.append("--no-watch")
        argv += list(args)
        gateway = _spawn(argv, port, workdir, attempt, config_path, home, cwd, child_env)
        try:
            _wait_healthy(gateway, startup_timeout)
            return gateway
        except GatewayStartError as error:
            gateway.stop()
            last_error = error
            if not any(marker in gateway.logs().lower() for marker in _BIND_FAILURES):
                raise
    assert last_error is not None
    raise last_error


def _fresh_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _spawn(
    argv: list[str],
    port: int,
    workdir: Path,
    attempt: int,
    config_path: Path | None,
    home: Path,
    cwd: Path,
    env: dict[str, str],
) -> GatewayProcess:
    suffix = f".{attempt}" if attempt else ""
    stdout_path = workdir / f"gateway.stdout{suffix}.log"
    stderr_path = workdir / f"gateway.stderr{suffix}.log"
    stdout = stdout_path.open("wb")
    stderr = stderr_path.open("wb")
    launcher = [sys.executable, "-c", _LAUNCHER, str(os.getpid()), _resolve(argv[0]), *argv[1:]]
    proc = subprocess.Popen(
        launcher,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,  # its own process group, so stop() can kill workers too
    )
    return GatewayProcess(
        url=f"http://127.0.0.1:{port}",
        port=port,
        proc=proc,
        argv=argv,
        config_path=config_path,
        home=home,
        cwd=cwd,
        env=env,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
        _files=[stdout, stderr],
    )


def _resolve(program: str) -> str:
    """execv needs a path: look a bare name up on PATH."""
    if os.sep in program:
        return program
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory) / program
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return program


def _wait_healthy(gateway: GatewayProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=2.0, verify=ssl_context()) as client:
        while True:
            if gateway.proc.poll() is not None:
                raise GatewayStartError(
                    f"gateway exited with code {gateway.proc.returncode} before /health answered\n"
                    f"argv: {gateway.argv}\n{_output(gateway)}"
                )
            try:
                response = client.get(gateway.url + "/health")
                if response.status_code == 200:
                    return
                last = f"status {response.status_code}: {response.text[:500]}"
            except httpx.HTTPError as error:
                last = f"{type(error).__name__}: {error}"
            if time.monotonic() >= deadline:
                raise GatewayStartError(
                    f"gateway /health not 200 within {timeout}s (last: {last})\n"
                    f"argv: {gateway.argv}\n{_output(gateway)}"
                )
            time.sleep(0.05)


def _output(gateway: GatewayProcess) -> str:
    return f"--- stdout ---\n{gateway.stdout()}\n--- stderr ---\n{gateway.stderr()}"


def _sdk_headers(
    api_key: str | None, auth_token: str | None, extra: Mapping[str, str] | None
) -> dict[str, str | Omit]:
    from anthropic import Omit

    # This SDK release sends `api_key=` as "Authorization: Bearer"; Claude Code sends an API
    # key as x-api-key. Build the headers ourselves so `api_key` means x-api-key, `auth_token`
    # means Authorization: Bearer, and neither means no credential at all.
    headers: dict[str, str | Omit] = {"Authorization": Omit()}
    if api_key is not None:
        headers["x-api-key"] = api_key
    if auth_token is not None:
        headers["Authorization"] = f"Bearer {auth_token}"
    headers.update(extra or {})
    return headers


def _as_header_mapping(headers: dict[str, str | Omit]) -> Mapping[str, str]:
    # The SDK accepts Omit values in default_headers at run time; its annotation says str only.
    return cast("Mapping[str, str]", headers)


def anthropic_client(
    target: HasURL,
    *,
    api_key: str | None = None,
    auth_token: str | None = None,
    default_headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    **kwargs: Any,
) -> anthropic.Anthropic:
    """An official SDK client for `target.url` (a gateway or a fake upstream), max_retries=0.

    `api_key` is sent as `x-api-key` and `auth_token` as `Authorization: Bearer` (both, one,
    or none); nothing is read from the environment or ~/.config/anthropic.
    """
    import anthropic

    kwargs.setdefault("http_client", anthropic.DefaultHttpxClient(verify=ssl_context()))
    return anthropic.Anthropic(
        base_url=target.url,
        api_key="",  # explicit, so the SDK does not look for credentials itself
        default_headers=_as_header_mapping(_sdk_headers(api_key, auth_token, default_headers)),
        max_retries=0,
        timeout=timeout,
        **kwargs,
    )


def async_anthropic_client(
    target: HasURL,
    *,
    api_key: str | None = None,
    auth_token: str | None = None,
    default_headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    **kwargs: Any,
) -> anthropic.AsyncAnthropic:
    """The AsyncAnthropic twin of `anthropic_client`."""
    import anthropic

    kwargs.setdefault("http_client", anthropic.DefaultAsyncHttpxClient(verify=ssl_context()))
    return anthropic.AsyncAnthropic(
        base_url=target.url,
        api_key="",
        default_headers=_as_header_mapping(_sdk_headers(api_key, auth_token, default_headers)),
        max_retries=0,
        timeout=timeout,
        **kwargs,
    )


def write_claude_credentials(
    home: Path,
    access_token: str,
    *,
    expires_at_ms: int | None = None,
    config_dir: Path | None = None,
) -> Path:
    """Write Claude Code's OAuth file (`claudeAiOauth.accessToken`, `expiresAt` in ms).

    Into `home/.claude/.credentials.json`, or `config_dir/.credentials.json` (for
    CLAUDE_CONFIG_DIR tests). Default expiry: one hour from now. Written atomically.
    """
    directory = config_dir if config_dir is not None else home / ".claude"
    directory.mkdir(parents=True, exist_ok=True)
    expires = expires_at_ms if expires_at_ms is not None else int((time.time() + 3600) * 1000)
    payload = {
        "claudeAiOauth": {
            "accessToken": access_token,
            "refreshToken": "refresh-token-the-gateway-must-never-use",
            "expiresAt": expires,
            "scopes": ["user:inference", "user:profile"],
            "subscriptionType": "max",
        }
    }
    path = directory / ".credentials.json"
    temporary = directory / ".credentials.json.tmp"
    temporary.write_text(json.dumps(payload))
    os.replace(temporary, path)
    return path
