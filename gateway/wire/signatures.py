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

__all__ = ["DEFAULT_CAPACITY", "SignatureStore"]

DEFAULT_CAPACITY = 100_000


def _digest(signature: str) -> bytes:
    return hashlib.blake2b(signature.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class SignatureStore:
    """signature -> issuing provider name, bounded LRU-by-insertion."""

    __slots__ = ("_issuers", "_capacity", "_counts")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._issuers: dict[bytes, str] = {}
        self._capacity = capacity
        self._counts: dict[str, int] = {}  # provider -> signatures remembered, for only_from()

    def _forget(self, key: bytes) -> None:
        provider = self._issuers.pop(key, None)
        if provider is not None:
            left = self._counts[provider] - 1
            if left:
                self._counts[provider] = left
            else:
                del self._counts[provider]

    def record(self, signature: str, provider: str) -> None:
        """Remember that ``provider`` issued ``signature``."""
        if not signature:
            return
        key = _digest(signature)
        self._forget(key)  # re-insert at the young end
        self._issuers[key] = provider
        self._counts[provider] = self._counts.get(provider, 0) + 1
        if len(self._issuers) > self._capacity:
            self._forget(next(iter(self._issuers)))

    def only_from(self, provider: str) -> bool:
        """True when no remembered signature was issued by a provider other than ``provider``.

        Then no block of any request can be foreign to ``provider``: the thinking rewrite skips
        its scan (always the case with a single provider that issues signatures).
        """
        counts = self._counts
        return not counts or (len(counts) == 1 and provider in counts)

    def issuer(self, signature: str) -> str | None:
        """The provider that issued ``signature``, or None when the gateway never relayed it."""
        if not signature:
            return None
        return self._issuers.get(_digest(signature))

    def __len__(self) -> int:
        return len(self._issuers)
