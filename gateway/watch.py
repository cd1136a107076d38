"""Live reload of routes.toml. (Placeholder: the watcher arrives with the live-reload work.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic import Sanic

if TYPE_CHECKING:
    from gateway.app import WorkerSettings
    from gateway.runtime import Runtime


async def watch_config(app: Sanic, runtime: Runtime, settings: WorkerSettings) -> None:
    """Watch the config (and the OAuth files in use) and apply changes to ``runtime.live``."""
    return None
