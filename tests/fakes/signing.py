"""Thinking signatures that only the issuing fake upstream accepts, as the real providers do.

A signature is base64(HMAC-SHA256(secret, "thinking\\0" + thinking text)): opaque to the gateway,
bound to the exact text, and different for every upstream (each has its own secret). A
redacted_thinking `data` value is base64(nonce + HMAC(secret, "redacted\\0" + nonce)).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

_NONCE_SIZE = 16


class Signer:
    """Issue and verify thinking signatures and redacted_thinking data with one secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = secret if secret is not None else os.urandom(32)

    def _mac(self, label: bytes, payload: bytes) -> bytes:
        return hmac.new(self.secret, label + b"\0" + payload, hashlib.sha256).digest()

    def sign_thinking(self, thinking: str) -> str:
        """The signature this upstream attaches to a thinking block with this text."""
        return base64.b64encode(self._mac(b"thinking", thinking.encode())).decode()

    def verify_thinking(self, thinking: str, signature: object) -> bool:
        if not isinstance(signature, str) or not signature:
            return False
        return hmac.compare_digest(signature, self.sign_thinking(thinking))

    def redacted_data(self) -> str:
        """A fresh opaque redacted_thinking `data` value that this upstream will accept back."""
        nonce = os.urandom(_NONCE_SIZE)
        return base64.b64encode(nonce + self._mac(b"redacted", nonce)).decode()

    def verify_redacted(self, data: object) -> bool:
        if not isinstance(data, str):
            return False
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return False
        nonce, mac = raw[:_NONCE_SIZE], raw[_NONCE_SIZE:]
        return len(nonce) == _NONCE_SIZE and hmac.compare_digest(mac, self._mac(b"redacted", nonce))
