"""An Exchange as a ledger row: the used target, times, tokens, and notes in words."""

from __future__ import annotations

from gateway.ops.ledger.rows import MAX_TEXT, notes, row
from gateway.ops.ledger.store import COLUMNS
from gateway.proxy.exchange import Attempt, Exchange


def exchange(*attempts: Attempt, **fields: object) -> Exchange:
    ex = Exchange("id1", "messages", model="claude-sonnet-5-5", route="default", started=100.0, **fields)  # type: ignore[arg-type]
    ex.attempts.extend(attempts)
    return ex


def as_dict(values: tuple[object, ...]) -> dict[str, object]:
    return dict(zip(COLUMNS, values))


def test_a_plain_answer_has_no_notes_and_every_fact() -> None:
    ex = exchange(Attempt("anthropic", "claude-sonnet-5-5", "ok", 200), status=200, stream=True, ttfb=0.25,
                  finished=101.5, input_tokens=10, output_tokens=20, cache_read_tokens=3000, cache_creation_tokens=40,
                  request_class="main", session="0123456789abcdef")
    got = as_dict(row(ex, 1_700_000_000.0))
    assert got == {
        "ts": 1_700_000_100.0, "endpoint": "messages", "session": "0123456789abcdef", "request_class": "main",
        "agent_type": None, "client_model": "claude-sonnet-5-5", "route": "default", "provider": "anthropic",
        "upstream_model": "claude-sonnet-5-5", "status": 200, "stream": 1, "ttfb_ms": 250.0, "total_ms": 1500.0,
        "input_tokens": 10, "output_tokens": 20, "cache_read_tokens": 3000, "cache_creation_tokens": 40,
        "tried": 1, "notes": None, "error": None,
    }


def test_notes_name_each_target_that_did_not_answer() -> None:
    ex = exchange(
        Attempt("zai", "glm-4.7", "skipped", detail="cooling down until 2027-01-15 08:00:30 UTC after a 429 (retry-after: 30)"),
        Attempt("ollama", "qwen", "skipped", detail="unreachable 3 times in a row; next try after ..."),
        Attempt("anthropic", "claude-sonnet-5-5", "spill", detail="7d 0.87 >= 0.85"),
        Attempt("backup", "m", "status", 529),
        Attempt("other", "m", "connect", detail="refused"),
        Attempt("nokey", "m", "credential", detail="ZAI_API_KEY is not set"),
        Attempt("last", "glm-4.7", "ok", 200),
        status=200,
    )
    assert notes(ex) == (
        "cooldown zai; circuit ollama; spill anthropic (7d 0.87 >= 0.85); fallback backup 529; "
        "fallback other connect; fallback nokey no-credential"
    )
    got = as_dict(row(ex, 0.0))
    assert (got["provider"], got["upstream_model"], got["tried"]) == ("last", "glm-4.7", 7)


def test_when_every_target_failed_the_last_one_is_the_provider_and_says_failed() -> None:
    ex = exchange(Attempt("zai", "glm-4.7", "timeout"), Attempt("anthropic", "claude-sonnet-5-5", "connect"),
                  status=502, error="every target failed")
    got = as_dict(row(ex, 0.0))
    assert got["notes"] == "fallback zai timeout; failed anthropic connect"
    assert (got["provider"], got["status"], got["error"], got["ttfb_ms"], got["total_ms"]) == (
        "anthropic", 502, "every target failed", None, None)


def test_no_route_and_client_text_is_cut() -> None:
    ex = Exchange("id2", "messages", model="x" * 1000, agent_type="a" * 500)
    ex.status = 404
    got = as_dict(row(ex, 0.0))
    assert got["provider"] is None and got["route"] is None and got["notes"] is None and got["tried"] == 0
    assert len(str(got["client_model"])) == MAX_TEXT and str(got["client_model"]).endswith("...")
    assert len(str(got["agent_type"])) == MAX_TEXT
