"""One reading of the body, end to end: the provider the gateway routes a body to acts on a model
that routes to it, whatever the body's duplicate keys, escapes, nesting or whitespace.

Two fake upstreams, one route each; a third model has no route (denied on purpose). Hypothesis
draws bodies (`fakes.json_bodies`) and sends each through a real gateway; whichever upstream
receives one must read, with a last-wins parser and with a first-wins one, a model that routes
to it (or no string model at all, which no upstream serves).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from fakes import FakeUpstream
from fakes.config import routes_toml
from fakes.gateway import GatewayProcess, start_gateway
from fakes.json_bodies import bodies, first_model, last_model

ROUTED = {"claude-haiku-5-5": "a", "claude-opus-5-5": "b"}
DENIED = "claude-denied-1"


class Setup:
    def __init__(self, gateway: GatewayProcess, upstreams: dict[str, FakeUpstream]) -> None:
        self.gateway = gateway
        self.upstreams = upstreams
        self.client = httpx.Client(base_url=gateway.url, timeout=10)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with FakeUpstream("a") as a, FakeUpstream("b") as b:
        config = routes_toml(
            providers={name: {"base_url": up.url, "key": {"client": True}} for name, up in (("a", a), ("b", b))},
            routes=[{"name": name, "match": model, "to": name} for model, name in ROUTED.items()],
        )
        gateway = start_gateway(config, workdir=tmp_path_factory.mktemp("body-reading"))
        state = Setup(gateway, {"a": a, "b": b})
        try:
            yield state
        finally:
            state.client.close()
            gateway.stop()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=bodies((*ROUTED, DENIED)))
def test_the_upstream_reached_reads_a_model_routed_to_it(setup: Setup, raw: bytes) -> None:
    for upstream in setup.upstreams.values():
        upstream.clear()
    response = setup.client.post("/v1/messages", content=raw,
                                 headers={"content-type": "application/json", "x-api-key": "sk-client"})
    reached = [(name, up.requests) for name, up in setup.upstreams.items() if up.requests]
    if not reached:
        assert response.status_code in (400, 404), response.text  # refused by the gateway
        return
    [(name, [received])] = reached
    for reading in (last_model(received.body), first_model(received.body)):
        if isinstance(reading, str):
            assert ROUTED.get(reading) == name, (raw, reading, name)
