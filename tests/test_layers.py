"""The import graph points one way: pure core <- resources <- assets <- definitions (docs/design.md "Layout").

Checked twice: statically, every import statement of every module (function-level ones included); and at run
time, by importing every core module in a fresh interpreter where Dagster and the I/O libraries cannot load.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What the pure core may not import: Dagster and every library that does I/O.
IO_LIBRARIES = ("dagster", "boto3", "botocore", "requests", "urllib3", "azure", "moto", "flask", "werkzeug", "psutil")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def first_party(names: set[str]) -> set[str]:
    return {n for n in names if n.split(".")[0] in ("spotlake_assets", "resources", "definitions")}


def test_there_are_modules_to_check():
    assert len(modules("spotlake_assets/core")) >= 15 and len(modules("resources")) >= 15


@pytest.mark.parametrize("path", modules("spotlake_assets/core"), ids=lambda p: module_name(p))
def test_the_pure_core_imports_only_itself_pandas_and_the_standard_library(path):
    imported = imports_of(path)
    io = sorted(n for n in imported if n.split(".")[0] in IO_LIBRARIES)
    outside = sorted(n for n in first_party(imported) if not n.startswith("spotlake_assets.core"))
    assert io == [] and outside == []


@pytest.mark.parametrize("path", modules("resources"), ids=lambda p: module_name(p))
def test_resources_import_only_the_core_of_spotlake_assets(path):
    outside = sorted(
        n
        for n in first_party(imports_of(path))
        if n.startswith("spotlake_assets") and not n.startswith("spotlake_assets.core")
    )
    assert outside == []


@pytest.mark.parametrize(
    "path",
    [p for p in modules("spotlake_assets") if not p.is_relative_to(ROOT / "spotlake_assets" / "local")
     and p.name != "cli.py"],
    ids=lambda p: module_name(p),
)  # fmt: skip
def test_the_definitions_never_import_the_local_stack_or_the_command_line(path):
    imported = first_party(imports_of(path))
    assert sorted(n for n in imported if n.startswith(("spotlake_assets.local", "spotlake_assets.cli"))) == []


def test_the_core_loads_where_dagster_and_io_libraries_cannot():
    blocked = ", ".join(repr(n) for n in IO_LIBRARIES)
    core = [module_name(p) for p in modules("spotlake_assets/core")]
    script = f"""
import importlib, importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ({blocked},):
            raise ImportError(f"blocked: {{name}}")
sys.meta_path.insert(0, Block())
for name in {core!r}:
    importlib.import_module(name)
print("loaded", len({core!r}))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"loaded {len(core)}"


def test_every_package_folder_is_a_regular_package():
    """setuptools' find_packages skips folders without __init__.py: the image would lack them (the editable
    install of make test would not notice)."""
    folders = {p.parent for p in modules("spotlake_assets", "resources")}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists()) == []
