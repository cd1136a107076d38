"""Shared fixtures: fake upstreams, a black hole, and the real gateway as a subprocess.

tests/ is put on sys.path here, so test modules import the fakes as `from fakes import ...`
(whatever pytest's import mode, and whether or not tests/ becomes a package).

Fixtures:
- `upstream_factory(name="anthropic", **options) -> FakeUpstream`, started, stopped at teardown;
- `black_hole` -> a started `BlackHole`;
- `raw_upstream_factory(answer=None) -> RawUpstream`, a lenient raw-socket upstream, started;
- `gateway_factory(config_text=None, *, env=None, args=(), cwd=None, watch=False, home=None,
  command=None, startup_timeout=20.0) -> GatewayProcess`, stopped at teardown (SIGINT, then
  SIGKILL after 10 s), even when the test fails;
- `gateway_home` -> an empty directory to pass as `home=` (write OAuth files into it first).
- `inprocess_gateway(config_text, *, env=None, host="127.0.0.1", home=None, log_level="info",
  log_format="text") -> InProcessGateway`: the gateway app on a thread of this process, its
  variables set in os.environ for the test; stopped at teardown.
Every test also runs without the developer's ANTHROPIC_* / CLAUDE_CONFIG_DIR / GATEWAY_* /
*_PROVIDER_* variables (see `_hermetic_environment`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

if TYPE_CHECKING:
    # The fakes (aiohttp, httpx) are imported inside the fixtures, so unit-test runs that never
    # use them do not pay for the imports.
    from fakes.gateway import GatewayProcess
    from fakes.inprocess import InProcessGateway
    from fakes.raw import RawUpstream
    from fakes.sockets import BlackHole
    from fakes.upstream import FakeUpstream

# Variables that would make a test depend on the machine it runs on: real credentials, the
# SDK's own credential discovery, a developer's gateway config or legacy proxy settings.
_MACHINE_VARIABLES = re.compile(
    r"^(ANTHROPIC_.*|CLAUDE_CONFIG_DIR|CLAUDE_CODE_.*|GATEWAY_.*|(HAIKU|SONNET|OPUS)_PROVIDER_.*|ZAI_API_KEY)$"
)


@pytest.fixture(scope="session")
def _empty_sdk_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("anthropic-sdk-config")


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch, _empty_sdk_config_dir: Path) -> None:
    """Remove machine-specific variables; point the SDK's profile lookup at an empty directory."""
    for name in list(os.environ):
        if _MACHINE_VARIABLES.match(name):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(_empty_sdk_config_dir))


UpstreamFactory = Callable[..., "FakeUpstream"]


@pytest.fixture
def upstream_factory() -> Iterator[UpstreamFactory]:
    """Start named fake upstreams: `upstream_factory("zai", api_key="zai-key", strict_third_party=True)`."""
    from fakes.upstream import FakeUpstream

    started: list[FakeUpstream] = []

    def factory(name: str = "anthropic", **options: Any) -> FakeUpstream:
        upstream = FakeUpstream(name, **options)
        started.append(upstream)
        return upstream.start()

    yield factory
    for upstream in reversed(started):
        upstream.stop()


@pytest.fixture
def raw_upstream_factory() -> Iterator[Callable[..., RawUpstream]]:
    """Start lenient raw-socket upstreams (`fakes.raw.RawUpstream(answer)`); all stopped at teardown."""
    from fakes.raw import RawUpstream

    started: list[RawUpstream] = []

    def factory(answer: Any = None) -> RawUpstream:
        upstream = RawUpstream(answer)
        started.append(upstream)
        return upstream.start()

    yield factory
    for upstream in reversed(started):
        upstream.stop()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    """A loopback listener that accepts connections and never answers."""
    from fakes.sockets import BlackHole

    with BlackHole() as hole:
        yield hole


@pytest.fixture
def gateway_home(tmp_path: Path) -> Path:
    """An empty HOME for the gateway, to prepare before it starts (e.g. ~/.claude/.credentials.json)."""
    home = tmp_path / "gateway-home"
    home.mkdir()
    return home


GatewayFactory = Callable[..., "GatewayProcess"]


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Start `gateway serve` subprocesses on free ports; all are stopped at teardown.

    `gateway_factory(config_text)` writes the config and passes --config; with
    `config_text=None` no --config is passed (discovery tests: use `cwd=` and `env=`).
    """
    from fakes.gateway import start_gateway

    started: list[GatewayProcess] = []

    def factory(
        config_text: str | None = None,
        *,
        env: Mapping[str, str | None] | None = None,
        args: Sequence[str] = (),
        cwd: Path | None = None,
        watch: bool = False,
        home: Path | None = None,
        command: Sequence[str] | None = None,
        startup_timeout: float = 20.0,
    ) -> GatewayProcess:
        workdir = tmp_path / f"gateway-{len(started) + 1}"
        gateway = start_gateway(
            config_text,
            workdir=workdir,
            env=env,
            args=args,
            cwd=cwd,
            watch=watch,
            home=home,
            command=command,
            startup_timeout=startup_timeout,
        )
        started.append(gateway)
        return gateway

    yield factory
    for gateway in reversed(started):
        gateway.stop()


InProcessFactory = Callable[..., "InProcessGateway"]


@pytest.fixture
def inprocess_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessFactory]:
    """Serve the real gateway app on a thread of this process (no subprocess); all stopped at teardown.

    `inprocess_gateway(config_text, env={"ZAI_API_KEY": "k"})`: `env` (None values remove a
    name), HOME (`home`, default an empty directory) and no proxy variables are set in
    os.environ for the rest of the test, since the gateway reads them while it serves.
    `host="0.0.0.0"` for a LAN bind. For tests of what the gateway does on the wire; tests of
    the process (startup lines, exit codes, signals, workers, log files, metrics values, live
    reload, discovery) use `gateway_factory`.
    """
    from fakes.inprocess import apply_environment, inprocess_environment, start_inprocess_gateway

    started: list[InProcessGateway] = []

    def factory(
        config_text: str,
        *,
        env: Mapping[str, str | None] | None = None,
        host: str = "127.0.0.1",
        home: Path | None = None,
        log_level: str = "info",
        log_format: str = "text",
    ) -> InProcessGateway:
        workdir = tmp_path / f"inprocess-{len(started) + 1}"
        if home is None:
            home = workdir / "home"
            home.mkdir(parents=True)
        variables = inprocess_environment(home, env)
        apply_environment(monkeypatch, variables)
        gateway = start_inprocess_gateway(
            config_text, workdir=workdir, env=variables, host=host, log_level=log_level, log_format=log_format
        )
        started.append(gateway)
        return gateway

    yield factory
    for gateway in reversed(started):
        gateway.stop()
