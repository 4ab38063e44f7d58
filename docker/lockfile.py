"""Keeps requirements.lock (the production image's pinned, hashed dependencies) in step with pyproject.toml.

`make lock` compiles the lock with uv (its version pinned in the Makefile) for the image's interpreter and platform,
then `stamp` writes the hash of the inputs it was compiled from into the lock's header. `check` (`make lock-check`,
tests/test_image.py) recomputes that hash from pyproject.toml and compares: offline, in milliseconds, no resolver.

    python3 docker/lockfile.py stamp requirements.lock
    python3 docker/lockfile.py check requirements.lock

Standard library only (tomllib: Python 3.11+), so it runs before any virtualenv exists.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"

# The image: python:3.11-slim-bookworm on linux/amd64 (Debian 12, glibc 2.36). `make lock` passes these to uv.
PYTHON_VERSION = "3.11"
PYTHON_PLATFORM = "x86_64-manylinux_2_36"
HASH_PREFIX = "# inputs-sha256: "


def lock_inputs(pyproject: Path = PYPROJECT) -> dict[str, object]:
    """What the lock is compiled from: the runtime dependencies (no extras: the image installs none) and target."""
    project = tomllib.loads(pyproject.read_text())["project"]
    return {
        "dependencies": sorted(" ".join(spec.split()) for spec in project.get("dependencies", [])),
        "requires-python": project.get("requires-python", ""),
        "python-version": PYTHON_VERSION,
        "python-platform": PYTHON_PLATFORM,
    }


def inputs_hash(pyproject: Path = PYPROJECT) -> str:
    return hashlib.sha256(json.dumps(lock_inputs(pyproject), sort_keys=True).encode()).hexdigest()


def recorded_hash(lock: Path = LOCK) -> str | None:
    """The inputs hash written into the lock's header by `stamp`, None if absent."""
    if not lock.exists():
        return None
    for line in lock.read_text().splitlines():
        if line.startswith(HASH_PREFIX):
            return line[len(HASH_PREFIX) :].strip()
    return None


def stamp(lock: Path = LOCK, pyproject: Path = PYPROJECT) -> None:
    """Write (or replace) the inputs hash as the lock's first line."""
    lines = [line for line in lock.read_text().splitlines() if not line.startswith(HASH_PREFIX)]
    lock.write_text("\n".join([HASH_PREFIX + inputs_hash(pyproject), *lines]) + "\n")


def check(lock: Path = LOCK, pyproject: Path = PYPROJECT) -> str | None:
    """None when the lock was compiled from pyproject.toml's current inputs, else what is wrong and what to run."""
    recorded = recorded_hash(lock)
    if recorded is None:
        return f"{lock.name} is missing or has no '{HASH_PREFIX.strip()}' header: run `make lock`"
    if recorded != inputs_hash(pyproject):
        return f"{lock.name} is out of step with {pyproject.name}'s dependencies: run `make lock` and commit it"
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"stamp", "check", "hash"}:
        print("usage: lockfile.py {stamp|check|hash} LOCKFILE", file=sys.stderr)
        return 2
    command, lock = argv[0], Path(argv[1])
    if command == "hash":
        print(inputs_hash())
        return 0
    if command == "stamp":
        stamp(lock)
        return 0
    problem = check(lock)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    print(f"{lock.name} is in step with {PYPROJECT.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
