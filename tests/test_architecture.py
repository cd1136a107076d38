"""The shape ARCHITECTURE.md draws, checked: packages import one way, no module imports in a circle.

Every ``import`` counts, wherever it stands (inside functions and ``TYPE_CHECKING`` blocks
too): a lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each layer may import besides itself (ARCHITECTURE.md, "The picture"). "base" is the
# gateway package's own top-level modules: errors, settings, timefmt, client_keys.
ALLOWED: dict[str, set[str]] = {
    "schemas": set(),
    "rules": {"schemas"},
    "base": {"rules", "schemas"},
    "upstream": {"base", "rules"},
    "wire": {"upstream", "base", "rules"},
    "proxy": {"wire", "upstream", "base", "rules"},
    "reload": {"upstream", "base", "rules"},
    "ops": {"proxy", "reload", "wire", "upstream", "base", "rules", "schemas"},
    "server": {"ops", "reload", "proxy", "wire", "upstream", "base", "rules"},
    "cli": {"server", "ops", "reload", "proxy", "wire", "upstream", "base", "rules", "schemas"},
}
PACKAGES = ("cli", "server", "ops", "reload", "proxy", "wire", "upstream")

# Third-party libraries that belong to one part of the gateway only.
CONFINED: dict[str, set[str]] = {
    "sanic": {"server", "proxy"},
    "watchfiles": {"reload"},
    "aiohttp": {"upstream", "proxy"},
    "httptools": {"upstream"},
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in ("gateway", "rules", "schemas"):
        for path in sorted((ROOT / top).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _layer(module: str) -> str:
    top, _, rest = module.partition(".")
    if top != "gateway":
        return top
    first = rest.split(".")[0]
    if first == "__main__":
        return "cli"
    return first if first in PACKAGES else "base"


def _imports(module: str, path: Path) -> set[str]:
    """Every module name ``module`` imports (absolute and relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _internal_edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for name in _imports(module, path):
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                graph[module].add(name)
    return graph


def test_every_package_imports_only_the_layers_below_it() -> None:
    wrong = [
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, targets in _internal_edges().items()
        for target in sorted(targets)
        if _layer(target) != _layer(module) and _layer(target) not in ALLOWED[_layer(module)]
    ]
    assert wrong == []


def test_no_module_imports_in_a_circle() -> None:
    graph = _internal_edges()
    cycles: list[str] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


@pytest.mark.parametrize("library", sorted(CONFINED))
def test_third_party_libraries_stay_in_their_part(library: str) -> None:
    users = sorted(
        module
        for module, path in MODULES.items()
        if any(name == library or name.startswith(library + ".") for name in _imports(module, path))
    )
    assert [m for m in users if _layer(m) not in CONFINED[library]] == []


def test_rules_never_imports_the_gateway_or_a_network_library() -> None:
    forbidden = ("gateway", "sanic", "httpx", "aiohttp", "watchfiles")
    found = [
        f"{module} imports {name}"
        for module, path in MODULES.items()
        if _layer(module) == "rules"
        for name in _imports(module, path)
        if name.split(".")[0] in forbidden
    ]
    assert found == []


def test_no_module_is_longer_than_450_lines() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert long == {}


def test_no_source_file_cites_a_document_outside_the_repository() -> None:
    # The repository stands alone: its own ARCHITECTURE.md and docs/ are the references.
    outside = ("DESIGN.md", "PROVIDERS.md", "STYLE.md", "../shared/", "/work/shared")
    found = [
        f"{module} cites {name}"
        for module, path in MODULES.items()
        for name in outside
        if name in path.read_text(encoding="utf-8")
    ]
    assert found == []
