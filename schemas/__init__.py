"""The JSON Schema of routes.toml, shipped as package data.

``gateway schema`` prints it for editors; ``rules.loader`` validates every config against it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["SCHEMA_FILE", "load_schema", "schema_text"]

SCHEMA_FILE = "routes.schema.json"


def schema_text() -> str:
    """The schema file's text, exactly as shipped."""
    return resources.files(__name__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The parsed schema. Cached: callers share one dict, so treat it as read-only."""
    schema: dict[str, Any] = json.loads(schema_text())
    return schema
