"""`spotlake` where spotlake_assets/local/ is not installed, as in the production image: the operator commands work,
the development stack's commands fail in one line saying how to get it, and nothing loads the stack.

Each case runs in a fresh interpreter whose import system refuses spotlake_assets.local (as tests/test_layers.py
refuses Dagster to the core), exactly as a missing package does (ModuleNotFoundError naming it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_layers import imports_in, module_name

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "spotlake_assets.local" or name.startswith("spotlake_assets.local."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
from spotlake_assets.cli import main
try:
    code = main(sys.argv[1:])
finally:
    loaded = sorted(m for m in sys.modules if m.startswith("spotlake_assets.local"))
    print("local modules loaded:", loaded, file=sys.stderr)
sys.exit(code)
"""
MISSING = (
    "error: the development stack (spotlake_assets/local/) is not installed here; in a checkout of the repository, "
    "`pip install -e '.[dev,local]'` or `make run` installs it"
)
HISTORY_ARGS = ["history", "--instance-type", "D2s_v3", "--start", "2026-11-01", "--end", "2026-11-02"]


def spotlake_without_local(*args: str, **env: str) -> tuple[int, str, list[str]]:
    """(exit status, stdout, stderr lines) of `spotlake ARGS` with no spotlake_assets.local; fails if it was loaded."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTLAKE_", "AWS_"))}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stderr.splitlines()
    assert lines[-1:] == ["local modules loaded: []"], proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, lines[:-1]


def test_help_lists_every_command_and_marks_the_missing_ones():
    code, out, err = spotlake_without_local("--help")
    assert (code, err) == (0, [])
    for command in ("run-local", "import-legacy", "local-stack", "dev", "history"):
        assert f"    {command}" in out, out
    assert out.count("(the development stack: not installed here)") == 3, out


@pytest.mark.parametrize(
    "args",
    [
        ["run-local"],
        ["run-local", "--partitions", "3", "--end", "2026-11-28-08:40", "--quiet"],
        ["run-local", "--help"],
        ["local-stack", "--free-ports"],
        ["dev", "--free-ports", "--", "-p", "3001"],
    ],
    ids=lambda a: " ".join(a),
)
def test_a_development_command_says_in_one_line_how_to_get_the_stack(args):
    code, out, err = spotlake_without_local(*args)
    assert (code, out, err) == (2, "", [f"spotlake {args[0]}: {MISSING}"])


def test_history_in_local_needs_the_stack_and_says_so():
    code, out, err = spotlake_without_local(*HISTORY_ARGS)
    assert (code, out, len(err)) == (2, "", 1), err
    assert err[0].startswith("spotlake history: error: SPOTLAKE_ENV=local: ") and MISSING[7:] in err[0], err[0]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["import-legacy", "--bucket", "b", "--end", "2026-11-28-8:05"], {}, "not on a 10-minute boundary"),
        ([*HISTORY_ARGS, "--zone", "7"], {"SPOTLAKE_ENV": "prod"}, "--zone '7' is not a zone"),
        (HISTORY_ARGS, {"SPOTLAKE_ENV": "nope"}, "SPOTLAKE_ENV='nope' is not a known environment"),
    ],
    ids=["import-legacy", "history-prod", "history-unknown-env"],
)
def test_the_operator_commands_check_their_arguments_as_usual(args, env, message):
    code, out, err = spotlake_without_local(*args, **env)
    assert (code, out, len(err)) == (2, "", 1), err
    assert err[0].startswith(f"spotlake {args[0]}: error: ") and message in err[0], err[0]


def test_the_entry_point_imports_the_stack_in_one_place():
    """cli.py names spotlake_assets.local only in `_dev_stack`, which tolerates its absence; cli_base.py never."""
    local = {
        name: sorted(n for n in imports_in((ROOT / "spotlake_assets" / name).read_text(),
                                           module_name(ROOT / "spotlake_assets" / name), False)
                     if n.startswith("spotlake_assets.local"))  # fmt: skip
        for name in ("cli.py", "cli_base.py")
    }
    assert local == {"cli.py": ["spotlake_assets.local", "spotlake_assets.local.commands"], "cli_base.py": []}
