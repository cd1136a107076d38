"""Helpers for the operations tests (client keys, request log, metrics, stats, doctor, service).

Not in tests/fakes (another engineer's): things only these tests need.
- `SECRETS`: every secret of the test setup, to grep outputs for;
- `lan_config(...)`: a routes.toml with every kind of key source, pointed at fake upstreams;
- `run_cli(...)`: the installed `gateway` script in a clean environment;
- `scrape(...)` / `samples(...)`: /metrics parsed with prometheus-client's parser;
- `poll(...)`: wait for a condition with a deadline (never a bare sleep).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fakes.config import routes_toml

GATEWAY = Path(sys.executable).with_name("gateway")
REPO = Path(__file__).resolve().parents[2]

ZAI_KEY = "zai-secret-0f3c9a7d5e1b4c2a"
VALUE_KEY = "sk-value-secret-77aa55cc33ee11"
OAUTH_TOKEN = "sk-ant-oat01-oauth-secret-9988776655"
REFRESH_TOKEN = "refresh-token-the-gateway-must-never-use"
CLIENT_KEY = "gw-client-key-4b1d2c3e4f5a6b7c"
CLIENT_API_KEY = "sk-ant-api03-client-secret-1234abcd"

SECRETS = (ZAI_KEY, VALUE_KEY, OAUTH_TOKEN, REFRESH_TOKEN, CLIENT_KEY, CLIENT_API_KEY)

T = TypeVar("T")


def leaked(text: str, secrets: Iterable[str] = SECRETS) -> list[str]:
    """The secrets found in ``text``: whole, or their distinctive middle (more than redact shows)."""
    found = []
    for secret in secrets:
        if secret in text or secret[-12:-4] in text:
            found.append(secret)
    return found


def lan_config(
    *,
    zai_url: str,
    anthropic_url: str,
    value_url: str,
    client_keys: bool = True,
    host: str | None = None,
) -> str:
    """Three providers (env key, client credentials, a literal value key) and three routes."""
    server: dict[str, Any] = {}
    if client_keys:
        server["client_keys"] = [{"env": "GATEWAY_CLIENT_KEY"}]
    if host:
        server["host"] = host
    return routes_toml(
        server=server or None,
        providers={
            "zai": {"base_url": zai_url, "key": {"env": "ZAI_API_KEY"}},
            "anthropic": {"base_url": anthropic_url, "key": [{"client": True}, {"oauth_file": True}]},
            "literal": {"base_url": value_url, "key": {"value": VALUE_KEY}},
        },
        routes=[
            {"name": "haiku", "match": "*haiku*", "to": [{"provider": "zai", "model": "glm-4.7"}, {"provider": "anthropic"}]},
            {"name": "literal", "match": "lit-*", "to": "literal"},
            {"name": "default", "match": "*", "to": "anthropic"},
        ],
    )


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


_SCRUBBED = ("HAIKU_", "SONNET_", "OPUS_", "ANTHROPIC_", "GATEWAY_", "ZAI_", "CLAUDE_", "PROMETHEUS_")


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


def run_cli(*args: str, home: Path, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120) -> CliResult:
    """Run the installed ``gateway`` script; HOME is ``home``, the gateway's variables scrubbed."""
    done = subprocess.run(
        [str(GATEWAY), *args],
        cwd=cwd,
        env=clean_env(home, env),
        input="",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def poll(check: Callable[[], T | None], *, timeout: float = 15.0, what: str = "condition") -> T:
    """Call ``check`` until it returns something truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {result!r})")
        time.sleep(0.05)


def scrape(url: str, key: str | None = None) -> str:
    """GET /metrics on a fresh connection (so with several workers, any of them may answer)."""
    headers = {"x-gateway-key": key} if key else {}
    response = httpx.get(url + "/metrics", headers=headers, timeout=10.0)
    assert response.status_code == 200, response.text
    return response.text


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples called ``name`` (e.g. gateway_tokens_total), keyed by sorted label pairs."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def total(values: Mapping[tuple[tuple[str, str], ...], float], **labels: str) -> float:
    """The sum of the samples whose labels include ``labels``."""
    return sum(v for k, v in values.items() if all((name, value) in k for name, value in labels.items()))


def fresh_post(url: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> httpx.Response:
    """One POST /v1/messages on its own connection."""
    return httpx.post(url + "/v1/messages", json=dict(body), headers=dict(headers), timeout=30.0)


def message(model: str, *, stream: bool = False, max_tokens: int = 32) -> dict[str, Any]:
    return {"model": model, "max_tokens": max_tokens, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


def wait_for_workers(url: str, count: int, timeout: float = 60.0) -> set[int]:
    """Poll /health on fresh connections until ``count`` different worker pids answered.

    The gateway fixture returns once one worker answers; a SIGINT while another worker is
    still starting leaves the main process hanging (Sanic), so tests that stop a multi-worker
    gateway wait for all of them first.
    """
    pids: set[int] = set()

    def seen() -> set[int] | None:
        pids.add(int(httpx.get(url + "/health", timeout=5.0).json()["pid"]))
        return pids if len(pids) >= count else None

    return poll(seen, timeout=timeout, what=f"{count} workers answering /health")
