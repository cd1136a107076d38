"""Which provider issued each thinking signature the gateway relayed.

Thinking blocks carry a ``signature`` (``redacted_thinking`` blocks an encrypted ``data``) that
only the issuing provider accepts. When a conversation moves between providers, the gateway
uses this memory to remove blocks another provider issued (``thinking = "foreign"``).

Bounded and in memory: the oldest entries go first. Keys are 16-byte digests, so a long
signature costs the same as a short one. Per worker process: with ``--workers N`` a signature
relayed by one worker is unknown to the others, and unknown blocks are kept (the safe side).
"""

from __future__ import annotations

import hashlib

DEFAULT_CAPACITY = 100_000


def _digest(signature: str) -> bytes:
    return hashlib.blake2b(signature.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class SignatureStore:
    """signature -> issuing provider name, bounded LRU-by-insertion."""

    __slots__ = ("_issuers", "_capacity")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._issuers: dict[bytes, str] = {}
        self._capacity = capacity

    def record(self, signature: str, provider: str) -> None:
        """Remember that ``provider`` issued ``signature``."""
        if not signature:
            return
        key = _digest(signature)
        self._issuers.pop(key, None)  # re-insert at the young end
        self._issuers[key] = provider
        if len(self._issuers) > self._capacity:
            del self._issuers[next(iter(self._issuers))]

    def issuer(self, signature: str) -> str | None:
        """The provider that issued ``signature``, or None when the gateway never relayed it."""
        if not signature:
            return None
        return self._issuers.get(_digest(signature))

    def __len__(self) -> int:
        return len(self._issuers)
