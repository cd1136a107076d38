"""The built wheel carries its data: the JSON Schema and the profiles load from an installed copy.

An editable install reads everything from the source tree, so it cannot show that package data
made it into the wheel. This test builds a wheel from a copy of the project (the shared tree
is not written to), installs it with ``--target`` into a temporary directory, and imports it
from yet another directory, so only the installed files are importable.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What the build needs: pyproject.toml (and the README it names) and the package directories.
SOURCES = ("pyproject.toml", "README.md", "gateway", "rules", "schemas", "examples")

PROBE = """
import json, sys
from pathlib import Path
import gateway, gateway.cli.profiles, gateway.ops.ledger.report, schemas
from gateway.cli.profiles import profile_dir, profile_names, read_profile
from schemas import load_schema
print(json.dumps({
    "gateway_file": gateway.__file__,
    "schemas_file": schemas.__file__,
    "profile_dir": str(profile_dir()),
    "profiles": profile_names(),
    "mixed_starts": read_profile("mixed")[:40],
    "schema_title": load_schema().get("title"),
    "dashboard": sorted(p.name for p in (Path(gateway.__file__).parent / "server" / "static").iterdir()),
}))
"""


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


def test_installed_wheel_loads_schema_and_finds_profiles(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)

    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), str(source)], tmp_path)
    [wheel] = wheels.glob("claude_gateway-*.whl")

    target = tmp_path / "installed"
    _run([*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)], tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # -c with the target first on sys.path: the installed copy, not the editable source tree.
    code = f"import sys; sys.path.insert(0, {str(target)!r})\n" + PROBE
    found = json.loads(_run([sys.executable, "-c", code], elsewhere).stdout)

    assert Path(found["gateway_file"]).is_relative_to(target)
    assert Path(found["schemas_file"]).is_relative_to(target)
    assert Path(found["profile_dir"]) == target / "gateway" / "profiles"
    assert found["profiles"] == [
        "all-deepseek", "all-zai", "anthropic-only", "fallback", "lan", "local-ollama", "mixed", "quota-saver",
    ]
    assert found["mixed_starts"] == (REPO / "examples" / "mixed.toml").read_text(encoding="utf-8")[:40]
    assert found["dashboard"] == ["dashboard.css", "dashboard.js", "index.html"]  # the page at /, no build step
    assert found["schema_title"] == json.loads((REPO / "schemas" / "routes.schema.json").read_text())["title"]
