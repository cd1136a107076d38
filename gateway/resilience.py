"""Provider health as seen by this worker: which providers to skip for now.

(Placeholder interface; cooldowns and circuits arrive with the resilience work.)
"""

from __future__ import annotations

from typing import Mapping


class ProviderHealth:
    """Tracks failures per provider and says whether a provider should be skipped right now."""

    def skip(self, provider: str, *, last: bool) -> bool:
        """True when ``provider`` is cooling down and is not the route's last target."""
        return False

    def on_status(self, provider: str, status: int, headers: Mapping[str, str]) -> None:
        """An upstream answered with ``status`` (any status)."""

    def on_connect_error(self, provider: str) -> None:
        """An upstream could not be reached."""

    def snapshot(self) -> dict[str, object]:
        """Cooldowns and circuits, for /health."""
        return {}
