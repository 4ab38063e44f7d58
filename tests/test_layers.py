"""The import graph, layer by layer (docs/design.md "Layout"): every module belongs to one layer, and each layer may
import only what its allowlist names, third-party and standard-library modules included.

Checked twice: statically, every import of every module (function-level ones, and `importlib.import_module` /
`__import__` of a literal name, included); and at run time, by importing every core module in a fresh interpreter
where Dagster and the I/O libraries cannot load. A test injects each known way around a looser check and sees this
one fail.

An allowlist entry `x` allows exactly the module `x`; `x.*` allows `x` and everything under it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The standard library without I/O: what pure code may use.
PURE_STDLIB = (
    "__future__", "abc", "bisect", "collections.*", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal",
    "difflib", "enum", "functools", "gzip", "hashlib", "heapq", "io", "itertools", "json", "math", "numbers",
    "operator", "re", "statistics", "string", "textwrap", "types", "typing", "urllib.parse", "warnings", "zlib",
    # reading the package's own data files (the region table)
    "pathlib", "importlib.resources",
)  # fmt: skip
# The standard library's processes, sockets, files, threads and clocks: for code that talks to the world.
SYSTEM_STDLIB = (
    "argparse", "base64", "concurrent.*", "http.*", "importlib.*", "inspect", "ipaddress", "logging.*", "os", "queue",
    "random", "resource", "select", "shlex", "shutil", "signal", "socket", "ssl", "subprocess", "sys", "tempfile",
    "threading", "time", "traceback", "urllib.error", "urllib.request", "uuid", "zipfile",
)  # fmt: skip
TABLES = ("pandas.*", "numpy.*", "pyarrow", "pyarrow.parquet")
CORE = ("spotlake_assets", "spotlake_assets.core.*")
SERVICES = (
    "dagster.*", "dagster_aws.*", "boto3.*", "botocore.*", "requests.*", "azure.core.*", "azure.identity.*",
    "psutil", "pydantic.*", "pyarrow.*",
)  # fmt: skip
RESOURCES = ("resources", *(f"resources.{p.stem}" for p in (ROOT / "resources").glob("*.py") if p.stem != "__init__"))
GRAPH_MODULES = ("defs", "jobs", "partitions", "sensors", "freshness", "monitoring")
GRAPH = tuple(f"spotlake_assets.{name}" for name in GRAPH_MODULES)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def query_api_closure() -> tuple[str, ...]:
    """The first-party modules of the Lambda zip (resources/query_api/package.py FILES)."""
    from resources.query_api.package import FILES

    return tuple(module_name(ROOT / name) for name in FILES if name.endswith(".py"))


# layer -> (where its modules are, what they may import)
LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # the pure core: no Dagster, no I/O library, nothing of the project outside the core
    "core": (("spotlake_assets/core/",), (*PURE_STDLIB, *TABLES, *CORE)),
    # the query Lambda: the standard library, boto3 and exactly the modules its zip carries
    "query_api": (("resources/query_api/",), (*PURE_STDLIB, *SYSTEM_STDLIB, "boto3.*", "botocore.*",
                                              *query_api_closure())),  # fmt: skip
    # the graph's resources: services and the core, never the assets, the Lambda, the dev stack or the definitions
    "resources": (("resources/",), (*PURE_STDLIB, *SYSTEM_STDLIB, *TABLES, *SERVICES, *CORE, *RESOURCES)),
    # raw snapshot assets: never the dataset assets they feed
    "sources": (("spotlake_assets/sources/",), (*PURE_STDLIB, "inspect", "dagster.*", *TABLES, *CORE, *RESOURCES,
                                                 "spotlake_assets.sources.*", *GRAPH)),  # fmt: skip
    "dataset": (("spotlake_assets/dataset/",), (*PURE_STDLIB, "dagster.*", *TABLES, *CORE, *RESOURCES,
                                                 "spotlake_assets.dataset.*", *GRAPH)),  # fmt: skip
    # partitions, jobs, sensors, the Definitions: everything of the graph, never the dev stack or the CLI
    "graph": (tuple(f"spotlake_assets/{name.split('.')[-1]}.py" for name in GRAPH) + ("spotlake_assets/__init__.py",),
              (*PURE_STDLIB, *SYSTEM_STDLIB, "dagster.*", *TABLES, "psutil", *CORE, *RESOURCES, *GRAPH,
               "dagster_shared.*", "spotlake_assets.sources.*", "spotlake_assets.dataset.*")),  # fmt: skip
    # the command line: operator commands; the dev stack's commands come from the dev stack
    "cli": (("spotlake_assets/cli.py", "spotlake_assets/cli_base.py"),
            (*PURE_STDLIB, *SYSTEM_STDLIB, "dagster.*", "boto3.*", "botocore.*", "requests.*", *CORE, *RESOURCES,
             "resources.query_api.*", *GRAPH, "spotlake_assets.cli_base", "spotlake_assets.local.*")),  # fmt: skip
    # the development stack: anything (it ships in neither the image nor the Lambda zip: tests/test_image.py)
    "local": (("spotlake_assets/local/",), ("*",)),
    "definitions": (("definitions.py",), ("__future__", "spotlake_assets.defs", "resources.settings")),
}
PRODUCTION = [name for name in LAYERS if name != "local"]


def layer_of(relative: str) -> str | None:
    """The layer of a module by its path; the most specific folder wins (resources/query_api/ before resources/)."""
    found = [(len(prefix), name) for name, (prefixes, _) in LAYERS.items() for prefix in prefixes
             if relative == prefix or (prefix.endswith("/") and relative.startswith(prefix))]  # fmt: skip
    return max(found)[1] if found else None


def imports_in(source: str, module: str, is_package: bool) -> set[str]:
    """Absolute names of every module `source` imports: import statements anywhere (relative ones resolved; `from x
    import y` counts x and x.y), and `importlib.import_module(...)` / `__import__(...)` calls; a call whose name is
    not a literal counts as `<dynamic import>`, which no allowlist names."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
            if name in ("import_module", "__import__"):
                literal = node.args[0] if node.args else None
                if isinstance(literal, ast.Constant) and isinstance(literal.value, str):
                    found.add(literal.value)
                else:
                    found.add("<dynamic import>")
    return found


def allowed(name: str, allowlist: tuple[str, ...]) -> bool:
    for entry in allowlist:
        if entry == "*" or name == entry or (entry.endswith(".*") and (name == entry[:-2] or
                                                                       name.startswith(entry[:-1]))):  # fmt: skip
            return True
    return False


def violations(relative: str, source: str) -> list[str]:
    """What the module at `relative` (a path from the repository root) imports beyond its layer's allowlist."""
    layer = layer_of(relative)
    if layer is None:
        return [f"{relative} belongs to no layer"]
    path = ROOT / relative
    module = module_name(path)
    allowlist = LAYERS[layer][1]
    out = []
    for name in sorted(imports_in(source, module, path.name == "__init__.py")):
        if allowed(name, allowlist):
            continue
        parent = name.rpartition(".")[0]
        # `from x import y` where y is a name in the allowed module x, not a module of its own
        if parent and allowed(parent, allowlist) and not _is_module(name):
            continue
        out.append(f"{relative} ({layer}) imports {name}")
    return out


def _is_module(name: str) -> bool:
    """Whether `name` is a module of this repository or an installed one (not an attribute of its parent)."""
    relative = Path(*name.split("."))
    if (ROOT / relative).with_suffix(".py").exists() or (ROOT / relative / "__init__.py").exists():
        return True
    if name.split(".")[0] in ("spotlake_assets", "resources", "definitions"):
        # a name imported from a package of ours is a module (their __init__ files define nothing)
        return (ROOT / relative.parent).is_dir()
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def production_modules() -> list[Path]:
    found = [p for folder in ("spotlake_assets", "resources") for p in (ROOT / folder).rglob("*.py")]
    return sorted([*found, ROOT / "definitions.py"])


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_every_layer_has_modules_and_every_module_a_layer():
    layers = [layer_of(relative(p)) for p in production_modules()]
    assert None not in layers
    assert set(layers) == set(LAYERS)


@pytest.mark.parametrize("path", production_modules(), ids=relative)
def test_each_module_imports_only_what_its_layer_allows(path):
    assert violations(relative(path), path.read_text()) == []


def inject(relative_path: str, line: str) -> list[str]:
    """The violations of a module with `line` added at its end."""
    return violations(relative_path, (ROOT / relative_path).read_text() + "\n" + line + "\n")


# Each way a looser check let through (issue "The house, second pass", item 4), injected into a real module.
INJECTIONS = [
    ("spotlake_assets/core/layout.py", "import dagster_shared", "dagster_shared"),
    ("spotlake_assets/core/layout.py", "import dagster_aws.s3", "dagster_aws.s3"),
    ("spotlake_assets/core/layout.py", "import urllib.request", "urllib.request"),
    ("spotlake_assets/core/layout.py", "from pyarrow import fs", "pyarrow.fs"),
    ("spotlake_assets/core/layout.py", "import pyarrow.fs", "pyarrow.fs"),
    ("resources/s3.py", "import definitions", "definitions"),
    ("resources/s3.py", "importlib.import_module('spotlake_assets.sources')", "spotlake_assets.sources"),
    ("resources/s3.py", "importlib.import_module(name)", "<dynamic import>"),
    ("resources/s3.py", "from spotlake_assets import core_ext", "spotlake_assets.core_ext"),
    ("spotlake_assets/sources/price.py", "from spotlake_assets.dataset import snapshot", "spotlake_assets.dataset"),
    ("spotlake_assets/sources/price.py", "from ..dataset.history import build_history_asset",
     "spotlake_assets.dataset"),
    ("resources/query_api/reader.py", "import pandas", "pandas"),
    ("resources/query_api/reader.py", "from resources.s3 import S3Store", "resources.s3"),
    ("spotlake_assets/defs.py", "from .local import stack", "spotlake_assets.local"),
]


@pytest.mark.parametrize(("where", "line", "name"), INJECTIONS, ids=[f"{w}: {line}" for w, line, _ in INJECTIONS])
def test_each_known_way_around_the_layers_is_caught(where, line, name):
    assert violations(where, (ROOT / where).read_text()) == []
    found = inject(where, line)
    assert found and any(name in v for v in found), found


def test_a_module_outside_every_layer_is_caught():
    """A new module the layers do not name (spotlake_assets/core_ext.py matched `spotlake_assets.core` by prefix
    before) belongs to no layer until one is given to it."""
    found = violations("spotlake_assets/core_ext.py", "import pandas\n")
    assert found == ["spotlake_assets/core_ext.py belongs to no layer"]
    assert not allowed("spotlake_assets.core_ext", LAYERS["resources"][1])


def test_the_core_loads_where_dagster_and_io_libraries_cannot():
    blocked = ("dagster", "dagster_shared", "dagster_aws", "boto3", "botocore", "requests", "urllib3", "azure", "moto",
               "flask", "werkzeug", "psutil")  # fmt: skip
    core = [module_name(p) for p in sorted((ROOT / "spotlake_assets" / "core").rglob("*.py"))]
    script = f"""
import importlib, importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
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
    folders = {p.parent for p in production_modules()} - {ROOT}
    assert sorted(relative(f) for f in folders if not (f / "__init__.py").exists()) == []
