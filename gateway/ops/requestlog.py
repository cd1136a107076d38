"""The request log: one line per request, built from its ``Exchange``.

Text (``--log-format text``), one ``key=value`` line that greps and cuts well::

    request id=5f1c0a9e2b7d4c31 client=192.168.1.20 endpoint=messages model=claude-haiku-5-5
      route=haiku tried=zai:429,anthropic:200 used=anthropic upstream_model=claude-haiku-5-5
      status=200 stream=true ttfb_ms=412.3 total_ms=2210.9 input_tokens=1200 output_tokens=87

(one line in the log). When routes read Claude Code's hint headers, ``class=subagent
agent=general-purpose`` follow the route; a target that stepped aside for its quota adds
``spill=anthropic:7d``. JSON (``--log-format json``): the same fields as keys of the line's
object, ``tried`` as a list of ``{provider, model, result, detail}``. Values a client chose (the
model name) are quoted when they hold anything but plain characters, so a request cannot forge
log lines. No secret is ever in an Exchange, so none can reach the log.

Cost: the line is built only when the ``gateway.request`` logger is enabled, the record is made
without the logging module's caller lookup, and ``AfterResponse`` runs the listeners (this log,
the metrics) after the answer went out instead of before it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.proxy.exchange import Attempt, Exchange

__all__ = ["AfterResponse", "RequestLog", "log_refusal", "text_line", "json_fields"]

LOGGER = "gateway.request"

_PLAIN = re.compile(r"[A-Za-z0-9._:/@+\-,\[\]]+")
_ESCAPES = {ord('"'): '\\"', ord("\\"): "\\\\"}
_QUOTED_CACHE = 1024  # model, route and client names repeat: check each once

_quoted: dict[str, str] = {}


def _quote(value: str) -> str:
    """``value`` as is when it is plain, else double-quoted with control characters escaped."""
    quoted = _quoted.get(value)
    if quoted is not None:
        return quoted
    if _PLAIN.fullmatch(value):
        quoted = value
    else:
        escaped = value.translate(_ESCAPES)
        escaped = "".join(c if c.isprintable() else repr(c)[1:-1] for c in escaped)
        quoted = f'"{escaped}"'
    if len(value) <= 100 and len(_quoted) < _QUOTED_CACHE:  # not error messages: they vary
        _quoted[value] = quoted
    return quoted


def _result(attempt: Attempt) -> str:
    return str(attempt.status) if attempt.status is not None else attempt.outcome


def text_line(exchange: Exchange) -> str:
    """The text form of one request's log line (without time and level)."""
    line = (
        f"request id={exchange.request_id} client={_quote(exchange.client or '-')} endpoint={exchange.endpoint}"
        f" model={_quote(exchange.model or '-')} route={_quote(exchange.route or '-')}"
    )
    if exchange.request_class is not None:
        line += f" class={exchange.request_class}"
    if exchange.agent_type is not None:
        line += f" agent={_quote(exchange.agent_type)}"
    attempts = exchange.attempts
    if attempts:
        line += " tried=" + ",".join([f"{a.provider}:{_result(a)}" for a in attempts])
        used = exchange.used
        if used is not None:
            line += f" used={used.provider} upstream_model={_quote(used.model)}"
    if exchange.spills:
        line += " spill=" + ",".join([f"{provider}:{window}" for provider, window in exchange.spills])
    line += f" status={exchange.status} stream={'true' if exchange.stream else 'false'}"
    if exchange.ttfb is not None:
        line += f" ttfb_ms={exchange.ttfb * 1000:.1f}"
    if exchange.finished is not None:
        line += f" total_ms={(exchange.finished - exchange.started) * 1000:.1f}"
    if exchange.input_tokens is not None:
        line += f" input_tokens={exchange.input_tokens}"
    if exchange.output_tokens is not None:
        line += f" output_tokens={exchange.output_tokens}"
    if exchange.error is not None:
        line += f" error={_quote(exchange.error)}"
    return line


def json_fields(exchange: Exchange) -> dict[str, Any]:
    """The JSON form of one request's log line: the fields added to the log object."""
    used = exchange.used
    fields: dict[str, Any] = {
        "event": "request",
        "request_id": exchange.request_id,
        "client": exchange.client,
        "endpoint": exchange.endpoint,
        "model": exchange.model,
        "route": exchange.route,
        "tried": [
            {"provider": a.provider, "model": a.model, "result": _result(a), **({"detail": a.detail} if a.detail else {})}
            for a in exchange.attempts
        ],
        "used": used.provider if used is not None else None,
        "upstream_model": used.model if used is not None else None,
        "status": exchange.status,
        "stream": exchange.stream,
        "ttfb_ms": round(exchange.ttfb * 1000, 1) if exchange.ttfb is not None else None,
        "total_ms": round((exchange.finished - exchange.started) * 1000, 1) if exchange.finished is not None else None,
        "input_tokens": exchange.input_tokens,
        "output_tokens": exchange.output_tokens,
        "error": exchange.error,
    }
    # Only when routes read the hint headers, and when a target stepped aside, as in the text form.
    if exchange.request_class is not None:
        fields["request_class"] = exchange.request_class
        fields["agent_type"] = exchange.agent_type
    if exchange.spills:
        fields["spill"] = [f"{provider}:{window}" for provider, window in exchange.spills]
    return fields


def _level(exchange: Exchange) -> int:
    # Failures the operator should see at --log-level warning; a client that left is not one.
    if exchange.status >= 500 or (exchange.error is not None and exchange.status != 499):
        return logging.WARNING
    return logging.INFO


class RequestLog:
    """An exchange listener writing one log line per request (text or JSON)."""

    __slots__ = ("_logger", "_json")

    def __init__(self, fmt: str = "text", logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(LOGGER)
        self._json = fmt == "json"

    def __call__(self, exchange: Exchange) -> None:
        level = _level(exchange)
        logger = self._logger
        if not logger.isEnabledFor(level):
            return
        if self._json:
            record = logger.makeRecord(logger.name, level, __file__, 0, "request", (), None,
                                       extra={"fields": json_fields(exchange)})
        else:
            # makeRecord + handle: the same record logger.info() makes, minus the stack walk
            # that finds the caller's file and line, which no format of ours shows.
            record = logger.makeRecord(logger.name, level, __file__, 0, text_line(exchange), (), None)
        logger.handle(record)


def log_refusal(client: str, method: str, path: str, reason: str, *, fmt: str = "text", status: int = 401) -> None:
    """One line for a request refused before routing: for its client key (401, ``reason``: missing
    or invalid), or at the edge (``head``, ``host``, ``origin``, ``content_type``: server/edge.py)."""
    logger = logging.getLogger(LOGGER)
    if not logger.isEnabledFor(logging.WARNING):
        return
    if fmt == "json":
        fields = {"event": "refused", "client": client, "method": method, "path": path, "status": status, "reason": reason}
        logger.warning("refused", extra={"fields": fields})
    else:
        logger.warning("refused client=%s %s %s status=%d reason=%s",
                       _quote(client or "-"), method, _quote(path), status,
                       f"{reason}_client_key" if status == 401 else reason)


class AfterResponse:
    """An exchange listener that hands exchanges to ``listeners`` once the answer was written.

    ``Runtime.finished`` runs before a non-streaming answer is written (the handler has not
    returned yet); accounting there would delay it. This queues the exchange and lets the
    event loop run the listeners on its next turn, after the write, in batches under load.
    """

    __slots__ = ("_listeners", "_pending", "_scheduled", "_log")

    def __init__(self, listeners: Sequence[Callable[[Exchange], None]]) -> None:
        self._listeners = tuple(listeners)
        self._pending: list[Exchange] = []
        self._scheduled = False
        self._log = logging.getLogger("gateway")

    def __call__(self, exchange: Exchange) -> None:
        self._pending.append(exchange)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a direct call): run now
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Run the listeners on every queued exchange."""
        self._scheduled = False
        pending, self._pending = self._pending, []
        for exchange in pending:
            for listener in self._listeners:
                try:
                    listener(exchange)
                except Exception:  # accounting must never break serving
                    self._log.exception("exchange listener %r failed", listener)
