"""Guard the public surface of the packages, as httpx does: `__all__` is exactly what they export."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest

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


def _implementation_modules() -> list[str]:
    root = Path(__file__).resolve().parents[1]
    names = []
    for top in ("gateway", "rules"):
        for path in sorted((root / top).rglob("*.py")):
            if path.name in ("__init__.py", "__main__.py"):
                continue
            names.append(".".join(path.relative_to(root).with_suffix("").parts))
    return names


@pytest.mark.parametrize("name", _implementation_modules())
def test_every_module_declares_exactly_what_it_defines_publicly(name: str) -> None:
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    defined = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == name
    }
    # Constants and type aliases (Literal[...], unions) are public values too.
    annotations = dict(vars(module).get("__annotations__", {}))
    values = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (
            attr.isupper()
            or typing.get_origin(value) is not None
            or isinstance(value, types.UnionType)
            or annotations.get(attr) in ("TypeAlias", typing.TypeAlias)
        )
    }
    assert len(set(module.__all__)) == len(module.__all__)
    assert defined <= set(module.__all__), f"public but not in __all__: {sorted(defined - set(module.__all__))}"
    unknown = set(module.__all__) - defined - values
    assert not unknown, f"in __all__ but not defined here: {sorted(unknown)}"
