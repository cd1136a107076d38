"""routes.toml text for tests: built from dicts, or an example profile pointed at fakes.

    routes_toml(
        providers={
            "zai": {"base_url": zai.url, "key": {"env": "ZAI_API_KEY"}},
            "anthropic": {"base_url": anthropic.url, "key": [{"client": True}]},
        },
        routes=[
            {"name": "haiku", "match": "claude-haiku-*", "to": [{"provider": "zai", "model": "glm-4.7"}]},
            {"name": "default", "match": "*", "to": "anthropic"},
        ],
    )
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the project supports 3.10 with tomli
    import tomli as tomllib

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name)


def toml_value(value: Any) -> str:
    """One TOML value: strings, booleans, numbers, lists and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string for everything we write.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML: {value!r}")


def _table(header: str, values: Mapping[str, Any]) -> list[str]:
    return [header, *(f"{_key(k)} = {toml_value(v)}" for k, v in values.items()), ""]


def routes_toml(
    *,
    providers: Mapping[str, Mapping[str, Any]],
    routes: Sequence[Mapping[str, Any]],
    server: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    version: int = 1,
) -> str:
    """A routes.toml document; the result is checked to parse as TOML."""
    lines = [f"version = {version}", ""]
    if server:
        lines += _table("[server]", server)
    if defaults:
        lines += _table("[defaults]", defaults)
    for name, provider in providers.items():
        lines += _table(f"[providers.{_key(name)}]", provider)
    for route in routes:
        lines += _table("[[route]]", route)
    text = "\n".join(lines)
    tomllib.loads(text)  # a bug here should fail here, not as a gateway startup error
    return text


def profile_with_urls(profile: str | Path, base_urls: Mapping[str, str]) -> str:
    """An example profile's text with the `base_url` of the named providers replaced.

    `profile` is a path or the text itself. Every provider in `base_urls` must exist in the
    profile and have a `base_url` line; everything else is kept byte for byte.
    """
    text = Path(profile).read_text() if isinstance(profile, Path) else profile
    section: str | None = None
    replaced: set[str] = set()
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            name = header.group(1).strip()
            section = name[len("providers.") :].strip().strip('"') if name.startswith("providers.") else None
        elif section is not None and section in base_urls:
            match = re.match(r"^(\s*base_url\s*=\s*)(\"[^\"]*\"|'[^']*')(.*)$", line, re.DOTALL)
            if match:
                line = match.group(1) + json.dumps(base_urls[section]) + match.group(3)
                replaced.add(section)
        out.append(line)
    missing = set(base_urls) - replaced
    if missing:
        raise ValueError(f"no base_url line found for provider(s): {', '.join(sorted(missing))}")
    result = "".join(out)
    tomllib.loads(result)
    return result
