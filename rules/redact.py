"""Showing secrets without revealing them."""

from __future__ import annotations

__all__ = ["redact"]


def redact(secret: str) -> str:
    """``sk-ant-api03-...wxyz`` -> ``sk-...wxyz``: a short prefix and the last four characters at most.

    Secrets too short to hide anything by trimming are shown as ``***``.
    """
    if len(secret) < 16:
        return "***"
    prefix = secret[:3] if secret[:3].isascii() and secret[:3].replace("-", "").isalnum() else ""
    return f"{prefix}...{secret[-4:]}"
