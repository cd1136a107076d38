"""Foreign error answers -> Anthropic's shape (gateway.wire.errors), pure: bytes in, bytes out."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from gateway.wire.errors import EXCERPT_CHARS, ZAI_TIMEZONE, Translation, dialect, translate, zai_reset
from rules.model import KeySource, Provider

NOW = 1_800_000_000.0
KEY = (KeySource("env", "K"),)


def zai_time(seconds_ahead: float) -> str:
    """A reset time as Z.AI writes it: local time in UTC+8, no zone."""
    return (datetime.fromtimestamp(NOW + seconds_ahead, ZAI_TIMEZONE)).strftime("%Y-%m-%d %H:%M:%S")


def run(status: int, body: Any, *, dialect: str | None = "zai") -> Translation:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    translated = translate(status, raw, provider="zai", dialect=dialect, now=NOW)
    assert translated is not None
    return translated


def error_of(translated: Translation) -> tuple[int, str, str]:
    doc = json.loads(translated.body)
    assert doc["type"] == "error" and set(doc["error"]) == {"type", "message"}
    return translated.status, doc["error"]["type"], doc["error"]["message"]


def test_anthropic_shaped_errors_pass_untouched() -> None:
    for body in (
        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}, "request_id": "req_1"},
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ):
        assert translate(429, json.dumps(body).encode(), provider="p", dialect="zai", now=NOW) is None


def test_fastapi_422_becomes_400_with_the_wording_kept() -> None:
    detail = {"detail": [{
        "type": "literal_error", "loc": ["body", "messages", 1, "role"],
        "msg": "Input should be 'user' or 'assistant'", "input": "system",
    }]}
    translated = run(422, detail, dialect=None)
    assert error_of(translated) == (
        400, "invalid_request_error", "messages.1.role: Input should be 'user' or 'assistant' (provider zai)"
    )
    assert translated.cool_until is None and not translated.unusable and translated.headers == {}


def test_fastapi_detail_string_and_several_items() -> None:
    assert error_of(run(404, {"detail": "Not Found"})) == (404, "not_found_error", "Not Found (provider zai)")
    two = {"detail": [{"loc": ["body", "a"], "msg": "Field required"}, {"loc": [], "msg": "bad"}]}
    assert error_of(run(422, two))[2] == "a: Field required; bad (provider zai)"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"), (401, "authentication_error"), (402, "billing_error"),
        (403, "permission_error"), (404, "not_found_error"), (413, "request_too_large"),
        (429, "rate_limit_error"), (500, "api_error"), (529, "overloaded_error"),
        (409, "invalid_request_error"), (503, "api_error"),
    ],
)
def test_code_bodies_take_the_type_of_their_status(status: int, kind: str) -> None:
    coded = error_of(run(status, {"error": {"code": "1214", "message": "bad thing"}}))
    assert coded == (status, kind, "bad thing (provider zai, code 1214)")
    # Anthropic's shape with a code where the type should be: the same.
    digits = error_of(run(status, {"type": "error", "error": {"type": "1214", "message": "bad thing"}}))
    assert digits == coded


@pytest.mark.parametrize("code", ["1302", "1303"])
def test_zai_concurrency_and_frequency_limits_are_429(code: str) -> None:
    translated = run(400, {"error": {"code": code, "message": "High concurrency"}})
    assert error_of(translated)[:2] == (429, "rate_limit_error")
    assert translated.headers == {} and translated.cool_until is None


@pytest.mark.parametrize("code", ["1304", "1308"])
def test_zai_plan_limits_are_429_with_retry_after_to_the_reset_in_utc8(code: str) -> None:
    message = f"Usage limit reached for 5 hour. Your limit will reset at {zai_time(3600)}"
    translated = run(429, {"type": "error", "error": {"type": code, "message": message}})
    assert error_of(translated) == (429, "rate_limit_error", f"{message} (provider zai, code {code})")
    assert translated.headers == {"retry-after": "3600"}
    assert translated.cool_until == NOW + 3600
    assert translated.reason == f"Z.AI code {code}: {message}"


def test_a_reset_in_the_past_or_missing_gives_no_retry_after() -> None:
    past = run(429, {"error": {"code": 1308, "message": f"Your limit will reset at {zai_time(-60)}"}})
    vague = run(429, {"error": {"code": "1308", "message": "Usage limit reached"}})
    for translated in (past, vague):
        assert translated.status == 429 and translated.headers == {} and translated.cool_until is None


def test_the_reset_time_is_read_in_utc8() -> None:
    # 16:00 in China is 08:00 UTC (which NOW is), whatever the machine's own zone.
    assert zai_reset("reset at 2027-01-15 16:00:00", NOW - 1) == datetime(2027, 1, 15, 8, tzinfo=timezone.utc).timestamp()
    assert zai_reset("reset at 2027-02-30 16:00:00", NOW) is None  # no such day


def test_retry_after_rounds_a_fraction_of_a_second_up() -> None:
    body = json.dumps({"error": {"code": "1308", "message": f"reset at {zai_time(90)}"}}).encode()
    translated = translate(429, body, provider="zai", dialect="zai", now=NOW + 0.4)
    assert translated is not None and translated.headers == {"retry-after": "90"}


@pytest.mark.parametrize("code", ["1113", "1309"])
def test_zai_arrears_and_expired_plan_are_402_and_the_credential_unusable(code: str) -> None:
    translated = run(429, {"error": {"code": code, "message": "Your account is in arrears"}})
    assert error_of(translated) == (402, "billing_error", f"Your account is in arrears (provider zai, code {code})")
    assert translated.unusable and translated.cool_until is None


def test_zai_codes_mean_nothing_special_from_other_providers() -> None:
    message = f"Usage limit reached. Your limit will reset at {zai_time(3600)}"
    translated = run(402, {"error": {"code": "1308", "message": message}}, dialect=None)
    assert error_of(translated)[:2] == (402, "billing_error")
    assert translated.headers == {} and translated.cool_until is None and not translated.unusable
    assert error_of(run(429, {"error": {"code": "1113", "message": "x"}}, dialect=None))[:2] == (429, "rate_limit_error")


def test_html_and_text_bodies_become_a_short_single_line_excerpt() -> None:
    html = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\n<body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
    assert error_of(run(502, html)) == (502, "api_error", "502 Bad Gateway (provider zai)")
    assert error_of(run(500, b"Internal Server Error\n")) == (500, "api_error", "Internal Server Error (provider zai)")
    assert error_of(run(503, b"")) == (503, "api_error", "HTTP 503 with an empty body (provider zai)")
    huge = error_of(run(500, b"<div>" + b"word " * 20_000 + b"</div>"))[2]
    assert len(huge) < EXCERPT_CHARS + 20 and "\n" not in huge and huge.endswith("... (provider zai)")


def test_unknown_json_shapes_are_wrapped_too() -> None:
    assert error_of(run(500, {"message": "upstream failed"}))[2] == "upstream failed (provider zai)"
    assert error_of(run(400, {"error": "bad request"}))[2] == "bad request (provider zai)"
    assert error_of(run(500, [1, 2]))[2] == "[1, 2] (provider zai)"


def test_a_provider_wording_over_many_lines_is_one_line() -> None:
    message = error_of(run(400, {"error": {"code": "1214", "message": "line one\nline two"}}))[2]
    assert message == "line one line two (provider zai, code 1214)"


def test_dialect_comes_from_the_preset_or_the_base_url() -> None:
    assert dialect(Provider("a", "http://127.0.0.1:9", KEY, preset="zai")) == "zai"
    assert dialect(Provider("b", "https://open.bigmodel.cn/api/anthropic", KEY)) == "zai"
    assert dialect(Provider("c", "https://api.z.ai/api/anthropic", KEY)) == "zai"
    assert dialect(Provider("d", "https://api.deepseek.com/anthropic", KEY, preset="deepseek")) is None
    assert dialect(Provider("e", "http://127.0.0.1:9", KEY)) is None
