"""Each operations module declares its public surface: `__all__` is exactly what it defines publicly."""

from __future__ import annotations

import importlib
import inspect
import typing

import pytest

MODULES = ["gateway.server.access", "gateway.ops.requestlog", "gateway.ops.metrics", "gateway.ops.stats", "gateway.ops.doctor",
           "gateway.ops.service"]


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_the_public_names_defined_in_the_module(name: str) -> None:
    module = importlib.import_module(name)
    defined = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == name
    }
    # Constants and type aliases (Literal[...]) are public values too.
    constants = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and (attr.isupper() or typing.get_origin(value) is typing.Literal)
    }

    assert len(set(module.__all__)) == len(module.__all__)
    assert defined <= set(module.__all__), f"public but not in __all__: {sorted(defined - set(module.__all__))}"
    unknown = set(module.__all__) - defined - constants
    assert not unknown, f"in __all__ but not defined here: {sorted(unknown)}"
