"""The ledger with the real gateway: rows survive restarts, `gateway stats --since` agrees with
the requests made, two workers lose nothing, and a ledger that cannot be written costs one
warning, never a request."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from ledger_support import poll, query, seed

from fakes import Handler, Reply
from fakes.config import routes_toml
from fakes.gateway import anthropic_client, gateway_env, ssl_context

Factory = Callable[..., Any]
CLIENT_KEY = "sk-ant-api03-ledger-client-0000"
ZAI_KEY = "zai-ledger-secret-1111"
GATEWAY = Path(sys.executable).with_name("gateway")


def config(anthropic_url: str, zai_url: str, ledger: Path | bool | None, **server: Any) -> str:
    """Two providers, two routes; ``ledger`` None: the default ledger."""
    if ledger is not None:
        server["ledger"] = str(ledger) if isinstance(ledger, Path) else ledger
    return routes_toml(
        providers={
            "zai": {"base_url": zai_url, "key": {"env": "ZAI_API_KEY"}},
            "anthropic": {"base_url": anthropic_url, "key": {"client": True}},
        },
        routes=[
            {"name": "haiku", "match": "claude-haiku-*", "to": [{"provider": "zai", "model": "glm-4.7"}]},
            {"name": "default", "match": "*", "to": "anthropic"},
        ],
        server=server or None,
    )


def ask(gw: Any, model: str, *, stream: bool = False, request_class: str = "main", session: str = "cc-session-6f1d2c9e-raw") -> None:
    headers = {"x-claude-code-request-class": request_class, "x-claude-code-session-id": session}
    client = anthropic_client(gw, api_key=CLIENT_KEY, default_headers=headers)
    args: dict[str, Any] = {"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        with client.messages.stream(**args) as s:
            s.get_final_message()
    else:
        client.messages.create(**args)


def stats(gw: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """`gateway stats ...` with the gateway's config, environment and home."""
    return subprocess.run(
        [str(GATEWAY), "stats", "--config", str(gw.config_path), *args],
        env=gateway_env(gw.home), cwd=gw.cwd, capture_output=True, text=True, timeout=60,
    )


def rows(path: Path) -> int:
    return int(query(path, "SELECT count(*) FROM requests")[0][0]) if path.exists() else 0


def test_rows_survive_a_restart_and_stats_since_agrees(tmp_path: Path, upstream_factory: Factory,
                                                        gateway_factory: Factory) -> None:
    anthropic = upstream_factory("anthropic", api_key=CLIENT_KEY)
    zai = upstream_factory("zai", api_key=ZAI_KEY, strict_third_party=True, allowed_betas=None)
    anthropic.set_default(Reply(input_tokens=100, output_tokens=10))
    zai.set_default(Reply(input_tokens=7, output_tokens=3))
    ledger = tmp_path / "usage" / "ledger.db"
    text = config(anthropic.url, zai.url, ledger)

    first = gateway_factory(text, env={"ZAI_API_KEY": ZAI_KEY})
    for _ in range(3):
        ask(first, "claude-haiku-5-5", request_class="subagent")
    ask(first, "claude-sonnet-5-5", stream=True)
    ask(first, "claude-sonnet-5-5")
    poll(lambda: rows(ledger) == 5, "5 rows before the restart")
    assert first.stop() == 0

    second = gateway_factory(text, env={"ZAI_API_KEY": ZAI_KEY})
    assert rows(ledger) == 5  # still there
    ask(second, "claude-opus-5-5", stream=True)
    poll(lambda: rows(ledger) == 6, "the 6th row after the restart")

    doc = json.loads(stats(second, "--since", "1h", "--json").stdout)
    assert doc["totals"]["requests"] == 6 and doc["totals"]["errors"] == 0
    assert doc["totals"]["input_tokens"] == 3 * 7 + 3 * 100 and doc["totals"]["output_tokens"] == 3 * 3 + 3 * 10
    assert {g["key"][0]: g["requests"] for g in doc["groups"]} == {"anthropic": 3, "zai": 3}
    assert doc["providers"][0]["share_requests"] == 0.5

    by_model = json.loads(stats(second, "--since", "1h", "--by", "model", "--json").stdout)
    assert {tuple(g["key"]): g["requests"] for g in by_model["groups"]} == {
        ("claude-haiku-5-5", "glm-4.7"): 3, ("claude-opus-5-5", "claude-opus-5-5"): 1,
        ("claude-sonnet-5-5", "claude-sonnet-5-5"): 2,
    }
    by_class = json.loads(stats(second, "--by", "class", "--json").stdout)  # --by alone: the last 7 days
    assert {g["key"][0]: g["requests"] for g in by_class["groups"]} == {"main": 3, "subagent": 3}
    by_route = json.loads(stats(second, "--since", "1h", "--by", "route", "--json").stdout)
    assert {g["key"][0]: g["requests"] for g in by_route["groups"]} == {"default": 3, "haiku": 3}

    table = stats(second, "--since", "1h")
    assert table.returncode == 0, table.stderr
    assert "PROVIDER   REQUESTS" in table.stdout and "Served: anthropic 50.0% of requests" in table.stdout
    # Sessions are digests, the same across the restart; the raw id is nowhere in the file.
    assert len(query(ledger, "SELECT DISTINCT session FROM requests")) == 1
    second.stop()
    for part in ledger.parent.glob("ledger.db*"):  # the file, and its -wal and -shm if any are left
        assert b"cc-session-6f1d2c9e-raw" not in part.read_bytes()


def test_stats_since_works_with_no_gateway_running_and_says_when_the_ledger_is_off(
    tmp_path: Path, upstream_factory: Factory, gateway_factory: Factory
) -> None:
    anthropic = upstream_factory("anthropic", api_key=CLIENT_KEY)
    ledger = tmp_path / "ledger.db"
    gw = gateway_factory(config(anthropic.url, anthropic.url, ledger))
    ask(gw, "claude-sonnet-5-5")
    gw.stop()  # the last batch is written at stop
    assert rows(ledger) == 1
    assert json.loads(stats(gw, "--since", "2026-01-01", "--json").stdout)["totals"]["requests"] == 1
    assert stats(gw, "--since", "next tuesday").returncode == 1

    off = gateway_factory(config(anthropic.url, anthropic.url, False))
    answer = stats(off, "--since", "7d")
    assert answer.returncode == 1
    assert "the ledger is off ([server] ledger = false in" in answer.stderr


def test_the_default_ledger_is_in_the_state_directory_and_keeps_cache_tokens(
    upstream_factory: Factory, gateway_factory: Factory, gateway_home: Path
) -> None:
    from aiohttp import web

    async def cached(request: Any, recorded: Any) -> web.StreamResponse:
        return web.json_response({
            "id": "msg_1", "type": "message", "role": "assistant", "model": recorded.model,
            "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 4, "output_tokens": 2, "cache_read_input_tokens": 31000,
                      "cache_creation_input_tokens": 900},
        })

    anthropic = upstream_factory("anthropic", api_key=CLIENT_KEY)
    anthropic.enqueue(Handler(cached))
    gw = gateway_factory(config(anthropic.url, anthropic.url, None), home=gateway_home)
    ask(gw, "claude-sonnet-5-5")
    ledger = gateway_home / ".local" / "state" / "claude-gateway" / "ledger.db"
    poll(lambda: rows(ledger) == 1, "the row in the default ledger")
    assert query(ledger, "SELECT input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens FROM requests") == [
        (4, 2, 31000, 900)]


def test_an_unwritable_ledger_keeps_serving_with_one_warning(
    tmp_path: Path, upstream_factory: Factory, gateway_factory: Factory
) -> None:
    anthropic = upstream_factory("anthropic", api_key=CLIENT_KEY)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    gw = gateway_factory(config(anthropic.url, anthropic.url, blocker / "ledger.db"))
    for _ in range(5):
        ask(gw, "claude-sonnet-5-5")
    assert len(anthropic.requests) == 5
    doc = poll(lambda: (d := gw.request("GET", "/dashboard.json").json())["ledger"]["dropped"] >= 5 and d,
               "5 requests counted as not recorded")
    assert doc["ledger"]["state"] == "failing"
    assert "is a file, not a directory" in doc["ledger"]["error"]
    warnings = [line for line in gw.logs().splitlines() if "WARNING" in line and "gateway.ledger" in line]
    assert len(warnings) == 1, warnings
    assert "requests are still served but not recorded" in warnings[0]


def test_two_workers_write_every_request_to_one_file(tmp_path: Path, upstream_factory: Factory,
                                                      gateway_factory: Factory) -> None:
    anthropic = upstream_factory("anthropic", api_key=CLIENT_KEY)
    ledger = tmp_path / "ledger.db"
    gw = gateway_factory(config(anthropic.url, anthropic.url, ledger), args=["--workers", "2"])
    body = {"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}

    # A new connection for each request (connection: close), so both workers take requests.
    client = httpx.Client(verify=ssl_context(), timeout=30, headers={**headers, "connection": "close"})

    def send(_: int) -> int:
        return client.post(gw.url + "/v1/messages", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, range(400)))
    assert statuses == [200] * 400
    poll(lambda: rows(ledger) == 400, "400 rows from two workers", timeout=30)
    # Both workers wrote some of them (each says how many in its dashboard document).
    written: dict[int, int] = {}

    def both_wrote() -> bool:
        doc = client.get(gw.url + "/dashboard.json").json()
        written[doc["gateway"]["pid"]] = doc["ledger"]["written"]
        return len(written) == 2

    poll(both_wrote, "an answer from each worker")
    client.close()
    assert sum(written.values()) == 400 and min(written.values()) > 0, written
    gw.stop()
    assert rows(ledger) == 400  # and nothing written twice at stop
    assert query(ledger, "SELECT count(DISTINCT id), min(status), max(status) FROM requests") == [(400, 200, 200)]


def test_retention_at_start_deletes_old_rows(tmp_path: Path, upstream_factory: Factory,
                                             gateway_factory: Factory) -> None:
    anthropic = upstream_factory("anthropic", api_key=CLIENT_KEY)
    ledger = tmp_path / "ledger.db"
    now = time.time()
    seed(ledger, [now - 3 * 86400, now - 2 * 86400, now - 3600])
    gateway_factory(config(anthropic.url, anthropic.url, ledger, ledger_days=1))
    poll(lambda: rows(ledger) == 1, "rows older than ledger_days deleted")
