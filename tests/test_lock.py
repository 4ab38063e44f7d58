"""requirements.lock: what is tested is what ships, and a lock that is not pyproject.toml's resolution fails.

The production image installs requirements.lock with hashes (tests/test_image.py checks the Dockerfile); the test venv
installs it the same way before the `dev` and `local` extras (the Makefile's .venv/.installed), so every locked package
must be here at exactly its locked version. `make lock-check` resolves pyproject.toml again with the pinned uv
(network: PyPI, as `make test` needs anyway) and compares pins and hashes with the lock's: a tampered copy must fail,
naming the package. Nothing here skips: without make, uv or the index these tests fail.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_lockfile():
    spec = importlib.util.spec_from_file_location("docker_lockfile", ROOT / "docker" / "lockfile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lockfile = load_lockfile()
LOCK_TEXT = lockfile.LOCK.read_text()
PINS = lockfile.parse(LOCK_TEXT).pins


# --- what is tested is what ships ----------------------------------------------------------------------


def test_every_locked_package_is_installed_at_its_locked_version() -> None:
    assert len(PINS) > 50 and "requests" in PINS
    wrong = []
    for key, pin in sorted(PINS.items()):
        name = key.partition("[")[0]
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != pin.version:
            wrong.append(f"{name}: lock {pin.version}, installed {installed}")
    assert not wrong, (
        "this interpreter does not run the locked versions (`touch requirements.lock && make .venv/.installed` "
        "installs them; an extra whose requirement moves a pin shows here):\n" + "\n".join(wrong)
    )


# --- make lock-check -----------------------------------------------------------------------------------


def lock_check(lock: Path) -> subprocess.CompletedProcess[str]:
    """`make lock-check` on another lock file, as a developer or CI runs it (a make of its own: no MAKEFLAGS)."""
    env = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    return subprocess.run(
        ["make", "--no-print-directory", "lock-check", f"LOCK_FILE={lock}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def tampered(tmp_path: Path, old: str, new: str) -> Path:
    assert LOCK_TEXT.count(old) == 1, old
    lock = tmp_path / "requirements.lock"
    lock.write_text(LOCK_TEXT.replace(old, new))
    return lock


def test_the_lock_passes_lock_check(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(LOCK_TEXT)
    done = lock_check(lock)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every pin and hash is what pyproject.toml resolves to" in done.stdout


def test_a_lock_edited_to_an_old_version_fails_lock_check_naming_it(tmp_path: Path) -> None:
    """requests==2.0.0 with 2.3x's hashes: the stamp still matches (pyproject.toml is unchanged), the resolver moves
    the pin back."""
    version = PINS["requests"].version
    done = lock_check(tampered(tmp_path, f"\nrequests=={version} \\\n", "\nrequests==2.0.0 \\\n"))
    assert done.returncode != 0, done.stdout + done.stderr
    assert "is in step with pyproject.toml" in done.stdout  # the stamp check alone would have passed it
    assert f"requests: lock 2.0.0, resolved {version}" in done.stderr, done.stderr
    assert "1 difference(s)" in done.stderr


def test_an_edited_hash_fails_lock_check_naming_its_package(tmp_path: Path) -> None:
    first = sorted(PINS["requests"].hashes)[0]
    edited = first[:-1] + ("0" if first[-1] != "0" else "1")
    done = lock_check(tampered(tmp_path, f"--hash={first}", f"--hash={edited}"))
    assert done.returncode != 0, done.stdout + done.stderr
    assert "requests: lock" in done.stderr and "1 hash(es) of the lock not served by the index" in done.stderr, (
        done.stderr
    )


# --- comparing a lock with a resolution (offline) ------------------------------------------------------


def test_parse_reads_pins_hashes_and_nothing_from_comments() -> None:
    contents = lockfile.parse(
        "# inputs-sha256: abc\n# via x\nFoo_Bar[Extra]==1.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n"
        "    # via\n    #   spotlake-azure (pyproject.toml)\nbaz==2 ; python_version >= '3.11'\n"
    )
    assert set(contents.pins) == {"foo-bar[extra]", "baz"}
    assert contents.pins["foo-bar[extra]"].hashes == {"sha256:aa", "sha256:bb"}
    assert contents.pins["baz"].requirement == "baz==2 ; python_version >= '3.11'"
    assert contents.other == ()
    assert lockfile.preferences(contents) == "Foo_Bar[Extra]==1.0\nbaz==2 ; python_version >= '3.11'\n"


@pytest.mark.parametrize(
    ("lock", "expected"),
    [
        ("a==1 --hash=sha256:aa\n", "b: missing from the lock, resolved 2"),
        ("a==1 --hash=sha256:aa\nb==2 --hash=sha256:bb\nc==3 --hash=sha256:cc\n", "c: lock 3, not in the resolution"),
        ("a==1 --hash=sha256:ab\nb==2 --hash=sha256:bb\n", "a: lock 1, resolved 1, 1 hash(es) of the lock not served"),
        ("a==1 --hash=sha256:aa\nb==2 --hash=sha256:bb\n--extra-index-url http://127.0.0.1:1/\n", "line not in"),
        ("a==1 --hash=sha256:aa\nb==2 --hash=sha256:bb\nA==1 --hash=sha256:aa\n", "line not in the resolution: A==1"),
    ],
)
def test_differences_name_what_is_not_the_resolution(lock: str, expected: str) -> None:
    resolved = lockfile.parse("a==1 \\\n --hash=sha256:aa\nb==2 \\\n --hash=sha256:bb\n")
    assert lockfile.differences(resolved, resolved) == []
    # a wheel uploaded after the lock was written: a hash on the index only is not a difference
    newer = lockfile.parse("a==1 --hash=sha256:aa --hash=sha256:new\nb==2 --hash=sha256:bb\n")
    assert lockfile.differences(resolved, newer) == []
    found = lockfile.differences(lockfile.parse(lock), resolved)
    assert any(line.startswith(expected) for line in found), found


def test_makefile_checks_the_lock_and_installs_it_before_the_extras() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^lock-check:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target, "no lock-check target"
    assert "lockfile.py check $(LOCK_FILE)" in target[1]
    assert "lockfile.py verify $(LOCK_FILE) -- $(UV_COMPILE)" in target[1]
    stamp = re.search(r"^\$\(STAMP\):(.*)\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert stamp and "requirements.lock" in stamp[1]
    hashed = stamp[2].index("--require-hashes --only-binary :all: --no-deps -r requirements.lock")
    assert hashed < stamp[2].index("-e '.[dev,local]'")
