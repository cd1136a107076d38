"""The request log: one line per request, text or JSON; listeners after the response; log files."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ops_support import CLIENT_API_KEY, ZAI_KEY, message, poll

from fakes import Error, Reply
from fakes.config import routes_toml
from gateway.ops.requestlog import AfterResponse, RequestLog, json_fields, text_line
from gateway.proxy.exchange import Attempt, Exchange

Factory = Callable[..., Any]


def exchange(**changes: Any) -> Exchange:
    ex = Exchange("0123456789abcdef", "messages", client="192.168.1.20", model="claude-haiku-5-5", route="haiku")
    ex.attempts = [Attempt("zai", "glm-4.7", "status", 429), Attempt("anthropic", "claude-haiku-5-5", "ok", 200)]
    ex.status, ex.stream, ex.input_tokens, ex.output_tokens = 200, True, 1200, 87
    ex.started, ex.ttfb, ex.finished = 10.0, 0.4123, 12.2109
    for name, value in changes.items():
        setattr(ex, name, value)
    return ex


def test_hint_headers_and_spills_are_shown_only_when_present() -> None:
    ex = exchange(
        request_class="subagent", agent_type="general-purpose", spills=(("anthropic", "7d"),),
        attempts=[Attempt("anthropic", "claude-haiku-5-5", "spill", detail="7d window at 91% >= spill_at 85%"),
                  Attempt("zai", "glm-4.7", "ok", 200)],
    )
    line = text_line(ex)
    assert " route=haiku class=subagent agent=general-purpose tried=anthropic:spill,zai:200 used=zai " in line
    assert " upstream_model=glm-4.7 spill=anthropic:7d status=200 " in line
    fields = json_fields(ex)
    assert (fields["request_class"], fields["agent_type"], fields["spill"]) == ("subagent", "general-purpose", ["anthropic:7d"])
    assert fields["tried"][0] == {"provider": "anthropic", "model": "claude-haiku-5-5", "result": "spill",
                                  "detail": "7d window at 91% >= spill_at 85%"}
    plain = exchange()
    assert "class=" not in text_line(plain) and "spill=" not in text_line(plain)
    assert not {"request_class", "agent_type", "spill"} & set(json_fields(plain))


def test_an_agent_type_cannot_forge_log_fields() -> None:
    line = text_line(exchange(request_class="subagent", agent_type='x status=200 "y"\nrequest id=forged'))
    assert '\n' not in line
    assert 'agent="x status=200 \\"y\\"\\nrequest id=forged"' in line


def test_text_line_has_every_field() -> None:
    assert text_line(exchange()) == (
        "request id=0123456789abcdef client=192.168.1.20 endpoint=messages model=claude-haiku-5-5 route=haiku "
        "tried=zai:429,anthropic:200 used=anthropic upstream_model=claude-haiku-5-5 status=200 stream=true "
        "ttfb_ms=412.3 total_ms=2210.9 input_tokens=1200 output_tokens=87"
    )


def test_text_line_of_a_gateway_error_names_the_error_and_no_provider() -> None:
    ex = exchange(attempts=[Attempt("zai", "glm-4.7", "connect", detail="cannot connect")], status=502,
                  stream=False, ttfb=None, input_tokens=None, output_tokens=None,
                  error="provider 'zai' is unreachable: cannot connect")

    line = text_line(ex)

    assert "tried=zai:connect status=502 stream=false total_ms=2210.9" in line
    assert "used=" not in line and "ttfb_ms" not in line and "input_tokens" not in line
    assert line.endswith('error="provider \'zai\' is unreachable: cannot connect"')


def test_a_client_chosen_model_cannot_forge_log_lines() -> None:
    line = text_line(exchange(model='x"\nrequest id=forged status=200 \x1b[31m'))

    assert "\n" not in line and "\x1b" not in line
    assert 'model="x\\"\\nrequest id=forged status=200 \\x1b[31m"' in line


def test_json_fields_are_the_same_facts() -> None:
    fields = json_fields(exchange())

    assert fields == {
        "event": "request",
        "request_id": "0123456789abcdef",
        "client": "192.168.1.20",
        "endpoint": "messages",
        "model": "claude-haiku-5-5",
        "route": "haiku",
        "tried": [
            {"provider": "zai", "model": "glm-4.7", "result": "429"},
            {"provider": "anthropic", "model": "claude-haiku-5-5", "result": "200"},
        ],
        "used": "anthropic",
        "upstream_model": "claude-haiku-5-5",
        "status": 200,
        "stream": True,
        "ttfb_ms": 412.3,
        "total_ms": 2210.9,
        "input_tokens": 1200,
        "output_tokens": 87,
        "error": None,
    }


def test_request_log_levels_and_nothing_built_when_disabled(caplog: Any) -> None:
    logger = logging.getLogger("test.requestlog")
    log = RequestLog("text", logger)
    built: list[int] = []

    class Counting(Exchange):
        @property
        def used(self) -> Attempt | None:  # called only when a line is built
            built.append(1)
            return None

    with caplog.at_level(logging.INFO, logger="test.requestlog"):
        log(exchange())
        log(exchange(status=502, error="down"))
        log(exchange(status=499, error="the client went away"))
    logger.setLevel(logging.CRITICAL)
    log(Counting("id", "messages"))
    logger.setLevel(logging.NOTSET)

    assert [r.levelname for r in caplog.records] == ["INFO", "WARNING", "INFO"]
    assert caplog.records[0].getMessage().startswith("request id=0123456789abcdef")
    assert built == []


def test_after_response_runs_listeners_on_the_next_loop_turn_and_survives_a_broken_one() -> None:
    seen: list[str] = []

    def broken(ex: Exchange) -> None:
        raise RuntimeError("boom")

    after = AfterResponse([broken, lambda ex: seen.append(ex.request_id)])

    async def main() -> tuple[list[str], list[str]]:
        after(exchange(request_id="a"))
        after(exchange(request_id="b"))
        before = list(seen)
        await asyncio.sleep(0)
        return before, list(seen)

    before, after_turn = asyncio.run(main())

    assert before == []  # nothing ran while the handler still had the loop
    assert after_turn == ["a", "b"]


# --- end to end -------------------------------------------------------------------------------


def two_providers(zai_url: str, anthropic_url: str) -> str:
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


def test_text_log_line_for_a_fallback_stream(upstream_factory: Factory, gateway_factory: Factory) -> None:
    zai = upstream_factory("zai", api_key=ZAI_KEY)
    anthropic = upstream_factory("anthropic", api_key=CLIENT_API_KEY)
    zai.enqueue(Error(500))
    anthropic.enqueue(Reply(input_tokens=321, output_tokens=54))
    gw = gateway_factory(two_providers(zai.url, anthropic.url), env={"ZAI_API_KEY": ZAI_KEY})

    gw.request("POST", "/v1/messages?beta=true", json=message("claude-haiku-5-5", stream=True), headers=HEADERS)
    logs = gw.wait_for_log("gateway.request: request id=")
    line = next(entry for entry in logs.splitlines() if "gateway.request: request id=" in entry)

    assert re.search(
        r"INFO +gateway\.request: request id=[0-9a-f]{16} client=127\.0\.0\.1 endpoint=messages "
        r"model=claude-haiku-5-5 route=haiku tried=zai:500,anthropic:200 used=anthropic "
        r"upstream_model=claude-haiku-5-5 status=200 stream=true ttfb_ms=[0-9.]+ total_ms=[0-9.]+ "
        r"input_tokens=321 output_tokens=54$",
        line,
    ), line
    ttfb = float(re.search(r"ttfb_ms=([0-9.]+)", line).group(1))  # type: ignore[union-attr]
    total = float(re.search(r"total_ms=([0-9.]+)", line).group(1))  # type: ignore[union-attr]
    assert 0 < ttfb <= total


def test_json_log_lines_parse_and_go_to_the_log_file(
    upstream_factory: Factory, gateway_factory: Factory, tmp_path: Path
) -> None:
    anthropic = upstream_factory("anthropic")
    log_file = tmp_path / "logs" / "gateway.log"
    gw = gateway_factory(
        two_providers(anthropic.url, anthropic.url),
        env={"ZAI_API_KEY": ZAI_KEY},
        args=["--log-format", "json", "--log-file", str(log_file)],
    )

    gw.request("POST", "/v1/messages", json=message("claude-sonnet-5-5"), headers=HEADERS)
    gw.request("POST", "/v1/messages", json={"model": "claude-sonnet-5-5"}, headers=HEADERS)  # no messages: 400
    text = poll(lambda: log_file.read_text() if log_file.read_text().count('"event":"request"') >= 2 else None,
                what="two request lines in the log file")
    docs = [json.loads(line) for line in text.splitlines()]
    requests = [d for d in docs if d.get("event") == "request"]

    assert all(isinstance(d["time"], str) and d["level"] in ("info", "warning", "error") for d in docs)
    assert requests[0]["logger"] == "gateway.request"
    assert requests[0]["status"] == 200 and requests[0]["used"] == "anthropic"
    assert requests[0]["input_tokens"] > 0 and requests[0]["output_tokens"] > 0
    assert requests[0]["tried"] == [{"provider": "anthropic", "model": "claude-sonnet-5-5", "result": "200"}]
    assert requests[1]["status"] == 400
    assert "gateway.request" not in gw.stderr()  # the file, not stderr
