"""One finished ``Exchange`` as one ledger row (``store.COLUMNS`` order), and its notes in words.

Built by the listener on the event loop once the answer was sent (``writer.LedgerWriter``): a
tuple of plain values that the garbage collector soon stops tracking, where a queued Exchange
would be scanned by every collection until its batch is written.

Notes say what happened on the way to the answer, one per target that did not give it,
joined by ``"; "``::

    cooldown zai; fallback anthropic 529      zai was cooling down, anthropic answered 529,
                                              the route's third target answered
    spill anthropic (7d 0.87 >= 0.85)         the plan's 7-day window was past spill_at
    circuit zai                               zai's circuit was open (unreachable)
    failed anthropic connect                  the last target could not be reached

The kind comes first (``fallback``, ``failed``, ``cooldown``, ``circuit``, ``spill``), so
``gateway stats`` and a person's ``grep`` can count them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.proxy.exchange import Attempt, Exchange

__all__ = ["MAX_TEXT", "notes", "row"]

# Client-chosen text (model names, agent types) and upstream error messages are cut here:
# the ledger keeps facts, not whatever a client sends.
MAX_TEXT = 200
_MAX_DETAIL = 80


def _cut(value: str | None, limit: int = MAX_TEXT) -> str | None:
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 3] + "..."


def _note(attempt: Attempt, last: bool) -> str:
    outcome, provider = attempt.outcome, attempt.provider
    if outcome == "skipped":
        # ProviderHealth.skip words it: "cooling down until ..." or "unreachable ...".
        return f"{'cooldown' if attempt.detail.startswith('cooling') else 'circuit'} {provider}"
    if outcome == "spill":
        detail = _cut(attempt.detail, _MAX_DETAIL)
        return f"spill {provider} ({detail})" if detail else f"spill {provider}"
    kind = "failed" if last else "fallback"
    if outcome == "credential":
        return f"{kind} {provider} no-credential"
    result = str(attempt.status) if attempt.status is not None else outcome
    return f"{kind} {provider} {result}"


def notes(exchange: Exchange) -> str | None:
    """What happened to the targets that did not answer (the module docstring), or None."""
    attempts = exchange.attempts
    used = exchange.used
    last = len(attempts) - 1
    out = [_note(a, i == last) for i, a in enumerate(attempts) if a is not used]
    return "; ".join(out) if out else None


def row(exchange: Exchange, wall_offset: float) -> tuple[Any, ...]:
    """The row of ``exchange``; ``wall_offset``: ``time.time() - time.perf_counter()`` now."""
    used = exchange.used
    attempts = exchange.attempts
    provider: str | None
    upstream_model: str | None
    if used is not None:
        provider, upstream_model = used.provider, used.model
    elif attempts:  # no target answered: the last one tried is the one that failed last
        provider, upstream_model = attempts[-1].provider, attempts[-1].model
    else:
        provider = upstream_model = None
    started = exchange.started
    finished = exchange.finished
    return (
        round(started + wall_offset, 3),
        exchange.endpoint,
        exchange.session,
        exchange.request_class or "unknown",  # no hint headers, no route asking: unknown
        _cut(exchange.agent_type),
        _cut(exchange.model) or "",
        exchange.route,
        provider,
        _cut(upstream_model),
        exchange.status,
        1 if exchange.stream else 0,
        round(exchange.ttfb * 1000, 1) if exchange.ttfb is not None else None,
        round((finished - started) * 1000, 1) if finished is not None else None,
        exchange.input_tokens,
        exchange.output_tokens,
        exchange.cache_read_tokens,
        exchange.cache_creation_tokens,
        len(attempts),
        notes(exchange),
        _cut(exchange.error, 500),
    )
