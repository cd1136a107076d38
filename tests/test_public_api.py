"""Guard the public surface of the packages, as httpx does: `__all__` is exactly what they export."""

from __future__ import annotations

import subprocess
import sys
import types

import gateway
import rules


def _public_names(module: types.ModuleType) -> list[str]:
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    )


def test_rules_all_is_exactly_its_public_names() -> None:
    assert sorted(rules.__all__) == _public_names(rules)
    assert len(set(rules.__all__)) == len(rules.__all__)


def test_gateway_package_exports_only_its_version_and_stays_light() -> None:
    assert gateway.__all__ == ["__version__"]
    assert _public_names(gateway) == []
    assert isinstance(gateway.__version__, str)


def test_importing_rules_never_imports_the_server() -> None:
    code = "import rules, sys; bad = [m for m in ('sanic', 'httpx', 'aiohttp', 'gateway') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
