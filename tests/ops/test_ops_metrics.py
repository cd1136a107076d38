"""/metrics and /stats: what the gateway counted matches what the upstreams reported, with 1 or 2 workers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from ops_support import (
    CLIENT_API_KEY,
    ZAI_KEY,
    fresh_post,
    message,
    poll,
    run_cli,
    samples,
    scrape,
    total,
    wait_for_workers,
)

from fakes import Error, Reply
from fakes.config import routes_toml
from gateway.ops.metrics import MAX_CREDENTIALS, MAX_MODELS, Metrics, multiprocess_directory
from gateway.ops.stats import render_table, usage
from gateway.proxy.exchange import Attempt, Exchange
from gateway.upstream.quota import Quota

Factory = Callable[..., Any]


def exchange(provider: str = "zai", model: str = "glm-4.7", **changes: Any) -> Exchange:
    ex = Exchange("id", "messages", client="127.0.0.1", model="claude-haiku-5-5", route="haiku")
    ex.attempts = [Attempt(provider, model, "ok", 200)]
    ex.status, ex.input_tokens, ex.output_tokens = 200, 100, 10
    ex.started, ex.ttfb, ex.finished = 1.0, 0.2, 2.0  # ttfb: seconds after arrival
    for name, value in changes.items():
        setattr(ex, name, value)
    return ex


def exposition(metrics: Metrics) -> str:
    return metrics.exposition()[0].decode()


def test_an_exchange_is_counted_by_route_provider_model_and_status() -> None:
    metrics = Metrics()
    metrics.observe(exchange())
    metrics.observe(exchange(stream=True))
    text = exposition(metrics)

    requests = samples(text, "gateway_requests_total")
    tokens = samples(text, "gateway_tokens_total")
    duration = samples(text, "gateway_request_duration_seconds_count")

    assert requests == {
        (("endpoint", "messages"), ("model", "glm-4.7"), ("provider", "zai"), ("route", "haiku"), ("status", "200")): 2.0
    }
    assert total(tokens, provider="zai", model="glm-4.7", direction="input") == 200
    assert total(tokens, provider="zai", model="glm-4.7", direction="output") == 20
    assert total(duration, stream="true") == 1 and total(duration, stream="false") == 1
    assert total(samples(text, "gateway_time_to_first_byte_seconds_sum")) == pytest.approx(0.4)
    assert "_created" not in text


def test_fallbacks_cooldown_skips_and_errors_are_counted() -> None:
    metrics = Metrics()
    ex = exchange("anthropic", "claude-haiku-5-5")
    ex.attempts = [
        Attempt("zai", "glm-4.7", "skipped", detail="cooling down"),
        Attempt("other", "m", "connect", detail="refused"),
        Attempt("anthropic", "claude-haiku-5-5", "status", 529),
    ]
    ex.status = 529
    metrics.observe(ex)
    broken = exchange(error="the stream ended before message_stop")
    metrics.observe(broken)
    metrics.provider_event("cooldown", "zai")
    metrics.reloaded(True, generation=4)
    metrics.reloaded(False)
    text = exposition(metrics)

    fallbacks = samples(text, "gateway_fallbacks_total")
    assert total(fallbacks, provider="zai", reason="cooldown", route="haiku", model="glm-4.7") == 1
    assert total(fallbacks, provider="other", reason="connect") == 1
    assert total(fallbacks, provider="anthropic") == 0  # the last target did not fall back
    assert total(samples(text, "gateway_request_errors_total"), provider="anthropic") == 1
    assert total(samples(text, "gateway_request_errors_total"), provider="zai") == 1  # broken stream
    assert total(samples(text, "gateway_upstream_attempts_total"), provider="anthropic", result="529") == 1
    assert total(samples(text, "gateway_upstream_attempts_total"), provider="zai", result="skipped") == 1
    assert total(samples(text, "gateway_provider_health_events_total"), provider="zai", event="cooldown") == 1
    assert total(samples(text, "gateway_config_reloads_total"), result="ok") == 1
    assert total(samples(text, "gateway_config_reloads_total"), result="failed") == 1
    assert total(samples(text, "gateway_config_generation")) == 4


def test_requests_no_provider_took_count_under_none() -> None:
    metrics = Metrics()
    ex = Exchange("id", "messages", model="no-such-model")
    ex.status, ex.finished = 404, ex.started + 0.001
    metrics.observe(ex)

    requests = samples(exposition(metrics), "gateway_requests_total")

    assert total(requests, provider="none", route="none", status="404", model="no-such-model") == 1


def test_model_labels_are_bounded_per_provider() -> None:
    metrics = Metrics()
    for n in range(MAX_MODELS + 10):
        metrics.observe(exchange(model=f"model-{n}"))

    requests = samples(exposition(metrics), "gateway_requests_total")

    assert len(requests) == MAX_MODELS + 1
    assert total(requests, model="other") == 10


def test_multiprocess_directory_is_made_for_several_workers_and_removed() -> None:
    env: dict[str, str] = {"PROMETHEUS_MULTIPROC_DIR": "/somewhere/else"}
    with multiprocess_directory(2, env) as directory:
        assert directory is not None and Path(directory).is_dir()
        assert env["PROMETHEUS_MULTIPROC_DIR"] == directory
    with multiprocess_directory(1, env) as single:
        assert single is None and "PROMETHEUS_MULTIPROC_DIR" not in env

    assert not Path(directory).exists()
    assert env == {"PROMETHEUS_MULTIPROC_DIR": "/somewhere/else"}


def test_usage_document_and_table_from_metrics() -> None:
    metrics = Metrics()
    metrics.observe(exchange("zai", "glm-4.7", input_tokens=3000, output_tokens=1000))
    metrics.observe(exchange("anthropic", "claude-opus-5-5", input_tokens=500, output_tokens=500))
    fell_back = exchange("anthropic", "claude-haiku-5-5", input_tokens=None, output_tokens=None)
    fell_back.attempts.insert(0, Attempt("zai", "glm-4.7", "status", 429))
    metrics.observe(fell_back)
    counted = Exchange("c", "count_tokens", route="haiku")
    counted.attempts, counted.status = [Attempt("zai", "glm-4.7", "ok", 200)], 200
    metrics.observe(counted)

    doc = usage(metrics.collect(), now=metrics.started.collect()[0].samples[0].value + 90)
    zai = next(p for p in doc["providers"] if p["provider"] == "zai")
    table = render_table(doc)

    assert doc["totals"] == {"requests": 3, "count_tokens": 1, "errors": 0, "fallbacks": 1,
                             "input_tokens": 3500, "output_tokens": 1500}
    assert zai["requests"] == 1 and zai["fallbacks"] == 1 and zai["count_tokens"] == 1
    assert zai["share_tokens"] == 0.8 and zai["share_requests"] == 0.333
    assert doc["uptime_s"] == 90.0
    assert "up 1 min 30 s" in table
    assert any(line.split()[:3] == ["zai", "glm-4.7", "1"] and "80.0% tok" in line for line in table.splitlines())
    assert table.splitlines()[-3].split() == ["TOTAL", "3", "0", "1", "3,500", "1,500"]


def quota(credential: str, utilization: float, reset: float) -> Quota:
    headers = [
        (b"anthropic-ratelimit-unified-status", b"allowed"),
        (b"anthropic-ratelimit-unified-5h-utilization", str(utilization).encode()),
        (b"anthropic-ratelimit-unified-5h-reset", str(int(reset)).encode()),
        (b"anthropic-ratelimit-unified-7d-utilization", b"0.5"),
    ]
    return Quota("anthropic", credential, None, headers, time.time())


def test_spills_are_counted_by_route_provider_and_window() -> None:
    metrics = Metrics()
    ex = exchange(spills=(("anthropic", "7d"),))
    ex.attempts = [Attempt("anthropic", "claude-haiku-5-5", "spill", detail="7d"), Attempt("zai", "glm-4.7", "ok", 200)]
    metrics.observe(ex)
    text = exposition(metrics)
    assert total(samples(text, "gateway_spills_total"), route="haiku", provider="anthropic", window="7d") == 1
    assert total(samples(text, "gateway_fallbacks_total"), provider="anthropic", reason="spill") == 1


def test_quota_gauges_are_set_on_flush_and_bounded_per_provider() -> None:
    metrics = Metrics()
    reset = float(int(time.time()) + 3600)
    for n in range(MAX_CREDENTIALS + 5):
        metrics.quota_observed(quota(f"client#{n:04d}", 0.25, reset))
    metrics.quota_observed(quota("client#0000", 0.75, reset))  # the latest state of a credential wins
    assert samples(exposition(metrics), "gateway_quota_utilization")  # flushed before the scrape
    text = exposition(metrics)
    utilization = samples(text, "gateway_quota_utilization")
    assert len({labels for labels in utilization if ("window", "5h") in labels}) == MAX_CREDENTIALS
    assert total(utilization, credential="client#0000", window="5h") == 0.75
    assert total(utilization, credential="client#0001", window="7d") == 0.5
    assert total(samples(text, "gateway_quota_reset_timestamp_seconds"), credential="client#0000", window="5h") == int(reset)

    doc = usage(metrics.collect(), now=reset - 600)
    row = next(r for r in doc["quota"] if r["credential"] == "client#0000")
    assert row["windows"]["5h"] == {"utilization": 0.75, "reset": row["windows"]["5h"]["reset"], "resets_in_s": 600.0}
    assert row["windows"]["7d"]["resets_in_s"] is None
    metrics.observe(exchange())
    table = render_table(usage(metrics.collect(), now=reset - 600))
    assert "Claude plan quota, as the latest answer for each credential put it:" in table
    assert any(line.split() == ["anthropic", "client#0000", "5h", "75%", "10", "min", "0", "s"] for line in table.splitlines())


# --- end to end: a mixed run -------------------------------------------------------------------------


def mixed_config(zai_url: str, anthropic_url: str) -> str:
    return routes_toml(
        providers={
            "zai": {"base_url": zai_url, "key": {"env": "ZAI_API_KEY"}},
            "anthropic": {"base_url": anthropic_url, "key": {"client": True}},
        },
        routes=[
            {"name": "haiku", "match": "*haiku*", "to": [{"provider": "zai", "model": "glm-4.7"}, {"provider": "anthropic"}]},
            {"name": "default", "match": "*", "to": "anthropic"},
        ],
    )


HEADERS = {"x-api-key": CLIENT_API_KEY, "anthropic-version": "2023-06-01"}


def usage_of(response: httpx.Response) -> tuple[int, int]:
    """Input and output tokens as the upstream reported them to the client (JSON or SSE)."""
    if response.headers["content-type"].startswith("application/json"):
        body = response.json()
        return body["usage"]["input_tokens"], body["usage"]["output_tokens"]
    import json

    input_tokens = output_tokens = 0
    for line in response.text.splitlines():
        if line.startswith("data: ") and '"usage"' in line:
            event = json.loads(line[6:])
            found = event.get("message", event).get("usage", {})
            input_tokens = found.get("input_tokens") or input_tokens
            output_tokens = found.get("output_tokens") or output_tokens
    return input_tokens, output_tokens


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_after_a_mixed_run_match_the_upstreams(
    upstream_factory: Factory, gateway_factory: Factory, tmp_path: Path, workers: int
) -> None:
    zai = upstream_factory("zai", api_key=ZAI_KEY)
    anthropic = upstream_factory("anthropic", api_key=CLIENT_API_KEY)
    temp = tmp_path / "tmp"
    temp.mkdir()
    gw = gateway_factory(
        mixed_config(zai.url, anthropic.url),
        env={"ZAI_API_KEY": ZAI_KEY, "TMPDIR": str(temp)},
        args=["--workers", str(workers)],
    )
    expected: dict[tuple[str, str], list[int]] = {}
    errors = 0

    def send(model: str, stream: bool) -> None:
        nonlocal errors
        before = {up.name: len(up.requests) for up in (zai, anthropic)}
        response = fresh_post(gw.url, message(model, stream=stream), HEADERS)
        if response.status_code != 200:
            errors += 1
            return
        answered = zai if len(zai.requests) > before["zai"] and zai.requests[-1].status == 200 else anthropic
        key = (answered.name, answered.requests[-1].model or "")
        counts = expected.setdefault(key, [0, 0, 0])
        input_tokens, output_tokens = usage_of(response)
        counts[0] += 1
        counts[1] += input_tokens
        counts[2] += output_tokens

    zai.enqueue(Error(500), Reply(input_tokens=1000, output_tokens=7))
    send("claude-haiku-5-5", stream=False)  # zai 500 -> falls back to anthropic
    send("claude-haiku-5-5", stream=True)  # zai, 1000 in / 7 out
    anthropic.enqueue(Error(400))
    send("claude-opus-5-5", stream=False)  # an upstream error passed through
    for n in range(40):  # fresh connections, so with 2 workers both get some
        send("claude-sonnet-5-5" if n % 2 else "claude-haiku-5-5", stream=bool(n % 3))
    if workers == 2:
        wait_for_workers(gw.url, 2)
        poll(lambda: len({p.name.split("_")[-1] for p in temp.glob("gateway-metrics-*/counter_*.db")}) >= 2
             or (send("claude-haiku-5-5", False), None)[1],
             timeout=60, what="both workers counting")

    def counted() -> str | None:
        text = scrape(gw.url)
        served = total(samples(text, "gateway_requests_total"), endpoint="messages")
        return text if served == sum(c[0] for c in expected.values()) + errors else None

    text = poll(counted, what="every request counted")
    requests = samples(text, "gateway_requests_total")
    tokens = samples(text, "gateway_tokens_total")

    for (provider, model), (count, input_tokens, output_tokens) in expected.items():
        assert total(requests, provider=provider, model=model, status="200") == count, (provider, model)
        assert total(tokens, provider=provider, model=model, direction="input") == input_tokens, (provider, model)
        assert total(tokens, provider=provider, model=model, direction="output") == output_tokens, (provider, model)
    assert total(requests, provider="anthropic", status="400") == 1
    assert total(samples(text, "gateway_fallbacks_total"), provider="zai", reason="500") == 1
    assert total(samples(text, "gateway_request_duration_seconds_count")) == sum(c[0] for c in expected.values()) + 1
    # Any worker answers a scrape with the same sums.
    for _ in range(4):
        assert samples(scrape(gw.url), "gateway_tokens_total") == tokens

    stats = httpx.get(gw.url + "/stats").json()
    by_provider = {p["provider"]: p for p in stats["providers"]}
    for provider in ("zai", "anthropic"):
        assert by_provider[provider]["input_tokens"] == sum(v[1] for k, v in expected.items() if k[0] == provider)
        assert by_provider[provider]["output_tokens"] == sum(v[2] for k, v in expected.items() if k[0] == provider)
    assert by_provider["zai"]["fallbacks"] == 1
    assert by_provider["anthropic"]["errors"] == 1
    assert stats["totals"]["requests"] == sum(c[0] for c in expected.values()) + 1

    shown = run_cli("stats", "--url", gw.url, home=tmp_path, cwd=tmp_path)
    assert shown.code == 0, shown.text
    assert f"{stats['totals']['input_tokens']:,}" in shown.out
    assert shown.out.splitlines()[0].startswith("Usage since ")


def test_metrics_directory_is_removed_when_the_gateway_stops(
    upstream_factory: Factory, gateway_factory: Factory, tmp_path: Path
) -> None:
    anthropic = upstream_factory("anthropic")
    temp = tmp_path / "tmp"
    temp.mkdir()
    gw = gateway_factory(mixed_config(anthropic.url, anthropic.url),
                         env={"TMPDIR": str(temp), "ZAI_API_KEY": ZAI_KEY}, args=["--workers", "2"])
    pids = wait_for_workers(gw.url, 2)
    directory = next(temp.glob("gateway-metrics-*"))

    assert len(pids) == 2
    assert gw.stop() == 0
    assert not directory.exists()
    assert list(temp.glob("gateway-metrics-*")) == []
