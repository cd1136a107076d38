"""The per-request gate of client keys (``server.client_keys``), and who sees /health's details.

The accepted keys are resolved once per config generation (``gateway.client_keys``), not per
request: the check costs a generation comparison and one constant-time comparison per key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gateway.client_keys import HEADER, AcceptedKeys, resolve_keys
from gateway.reload.live import LiveConfig

__all__ = ["AccessControl"]

log = logging.getLogger("gateway.access")


class AccessControl:
    """The per-worker gate: accepted keys cached per config generation.

    ``loopback``: the gateway listens on 127.0.0.1 or ::1 only, so nobody else can connect.
    """

    __slots__ = ("_live", "_env", "_accepted", "loopback", "log_format")

    def __init__(self, live: LiveConfig, env: Mapping[str, str], *, loopback: bool, log_format: str = "text") -> None:
        self._live = live
        self._env = env
        self.loopback = loopback
        self.log_format = log_format
        self._accepted = AcceptedKeys(-1, False, ())

    def current(self) -> AcceptedKeys:
        """The keys of the config served now (rebuilt when the generation changed)."""
        loaded = self._live.current
        accepted = self._accepted
        if accepted.generation != loaded.generation:
            accepted = resolve_keys(loaded.ruleset.server.client_keys, self._env, loaded.generation)
            for problem in accepted.problems:
                log.error("client keys: %s", problem)
            self._accepted = accepted
        return accepted

    def allows(self, headers: Mapping[str, str], *, bearer: bool = False) -> bool:
        """True when the request may be served (no keys configured, or it carries a valid one).

        ``bearer``: also take the key from ``Authorization: Bearer``. Only for the gateway's own
        endpoints (/metrics, /stats), which is what Prometheus's ``authorization`` setting
        sends; on proxied requests that header is the client's credential for the upstream.
        """
        accepted = self.current()
        if not accepted.required or accepted.accepts(headers.get(HEADER)):
            return True
        if bearer:
            scheme, _, token = (headers.get("authorization") or "").partition(" ")
            return scheme.lower() == "bearer" and accepted.accepts(token.strip())
        return False

    def shows_details(self, headers: Mapping[str, str]) -> bool:
        """Whether /health may list providers, routes and tiers to this caller.

        Always on a loopback bind; elsewhere only to a caller with a valid client key (with no
        client keys configured on a LAN bind, nobody gets the details).
        """
        if self.loopback:
            return True
        accepted = self.current()
        return accepted.required and accepted.accepts(headers.get(HEADER))

    @staticmethod
    def refusal_reason(headers: Mapping[str, str]) -> str:
        """``missing`` or ``invalid``: for the log and the metrics."""
        return "invalid" if headers.get(HEADER) else "missing"

    def refusal(self, headers: Mapping[str, str]) -> str:
        """The 401 message: what was wrong with the request, never what the keys are."""
        if not headers.get(HEADER):
            return (
                f"this gateway requires a client key in the {HEADER} header (Claude Code: "
                f"ANTHROPIC_CUSTOM_HEADERS=\"{HEADER}: <key>\"); ask the gateway's operator for one"
            )
        return f"the {HEADER} header does not hold a key this gateway accepts"

