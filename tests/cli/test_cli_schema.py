"""``gateway schema``: the JSON Schema, exactly what the loader validates against."""

from __future__ import annotations

import json

from cli_support import Run

from schemas import load_schema


def test_schema_is_json_equal_to_the_shipped_schema(run: Run) -> None:
    result = run("schema")
    assert result.code == 0
    assert result.err == ""
    schema = json.loads(result.out)
    assert schema == load_schema()
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")
