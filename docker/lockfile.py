"""Keeps requirements.lock (the production image's pinned, hashed dependencies) in step with pyproject.toml, and
proves it is exactly what pyproject.toml resolves to.

`make lock` compiles the lock with uv (its version and arguments in the Makefile) for the image's interpreter and
platform: `lock` hands uv the current lock's pins, without their hashes, as preferences (so unchanged inputs keep their
versions and every hash comes from the index again), writes the result and `stamp`s into its header the hash of the
inputs it was compiled from. `make lock-check` then runs:

- `check` (also tests/test_image.py): recomputes that hash from pyproject.toml and compares; offline, in
  milliseconds, no resolver. It notices a changed pyproject.toml, not an edited lock.
- `verify`: resolves again exactly as `lock` does, into a temporary file, and compares the pins and their hash sets
  with the lock's. A version edited to one pyproject.toml does not allow is moved by the resolver; one it allows is
  kept, but with the index's hashes for that version; an edited hash is not the index's. Each shows as a difference.
  (uv keeps the hashes of an output file's pins as they are, so the preferences it is handed carry none.)

    python3 docker/lockfile.py stamp requirements.lock
    python3 docker/lockfile.py check requirements.lock
    python3 docker/lockfile.py lock requirements.lock -- UV PIP COMPILE ARGUMENTS...
    python3 docker/lockfile.py verify requirements.lock -- UV PIP COMPILE ARGUMENTS...

Standard library only (tomllib: Python 3.11+), so it runs before any virtualenv exists.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import NamedTuple

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


# ---- the lock's contents, and the same resolution again


class Pin(NamedTuple):
    requirement: str  # as written: name[extras]==version (; marker)
    version: str
    hashes: frozenset[str]  # "sha256:..." values


class Contents(NamedTuple):
    pins: dict[str, Pin]  # normalised name with extras -> pin
    other: tuple[str, ...]  # any other line of the requirements file (an option, a duplicate, an unpinned name)


_PIN = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?\s*==\s*(?P<version>[^\s;]+)\s*(?P<marker>;.*)?"
)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(text: str) -> Contents:
    """The pins of a requirements file with their hashes; comments (the header, `# via`) dropped."""
    pins: dict[str, Pin] = {}
    other: list[str] = []
    for line in text.replace("\\\n", " ").splitlines():
        line = re.sub(r"(^|\s)#.*", "", line).strip()
        if not line:
            continue
        hashes = frozenset(re.findall(r"--hash[=\s]\s*(\S+)", line))
        requirement = re.sub(r"\s*--hash[=\s]\s*\S+", "", line).strip()
        match = _PIN.fullmatch(requirement)
        key = match and normalise(match["name"]) + (match["extras"] or "").lower().replace(" ", "")
        if not match or key in pins:
            other.append(line)
            continue
        pins[key] = Pin(" ".join(requirement.split()), match["version"], hashes)
    return Contents(pins, tuple(other))


def preferences(contents: Contents) -> str:
    """The pins alone, as uv's output file to prefer: without hashes, which uv would otherwise keep as they are."""
    return "".join(pin.requirement + "\n" for pin in contents.pins.values())


def resolve(lock: Path, command: list[str], output: Path) -> None:
    """Run `command` (uv pip compile ... in the project's root) into `output`, the lock's pins preferred."""
    contents = parse(lock.read_text()) if lock.exists() else Contents({}, ())
    output.write_text(preferences(contents))
    done = subprocess.run([*command, "--output-file", str(output)], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"resolving {PYPROJECT.name} failed ({command[0]}): {done.stderr.strip() or done.stdout}")


def differences(lock: Contents, resolved: Contents) -> list[str]:
    """One line per package (or line) where the lock is not the resolution."""
    found = []
    for key in sorted(lock.pins.keys() | resolved.pins.keys()):
        mine, theirs = lock.pins.get(key), resolved.pins.get(key)
        if theirs is None:
            found.append(f"{key}: lock {mine.version}, not in the resolution")
        elif mine is None:
            found.append(f"{key}: missing from the lock, resolved {theirs.version}")
        elif mine.version != theirs.version:
            found.append(f"{key}: lock {mine.version}, resolved {theirs.version}")
        elif mine.requirement != theirs.requirement:
            found.append(f"{key}: lock `{mine.requirement}`, resolved `{theirs.requirement}`")
        elif mine.hashes - theirs.hashes:
            # every hash of the lock must be one the index serves for that version; a wheel uploaded to the
            # index after the lock was written (a hash on the index only) does not make the lock wrong
            found.append(
                f"{key}: lock {mine.version}, resolved {theirs.version}, "
                f"{len(mine.hashes - theirs.hashes)} hash(es) of the lock not served by the index"
            )
    found += [f"line not in the resolution: {line[:120]}" for line in lock.other if line not in resolved.other]
    found += [f"line missing from the lock: {line[:120]}" for line in resolved.other if line not in lock.other]
    return found


def verify(lock: Path, command: list[str]) -> str | None:
    """None when the lock's pins are what `command` resolves to with them preferred and each of its hashes is one
    the index serves for that pin, else
    which packages differ and what to run."""
    if not lock.exists():
        return f"{lock} is missing: run `make lock`"
    with tempfile.TemporaryDirectory(prefix="lock-check-") as tmp:
        resolved = Path(tmp) / "resolved.lock"
        resolve(lock, command, resolved)
        found = differences(parse(lock.read_text()), parse(resolved.read_text()))
    if not found:
        return None
    return (
        f"{lock.name} is not what {PYPROJECT.name} resolves to with its pins preferred ({len(found)} "
        "difference(s)):\n  " + "\n  ".join(found) + "\n`make lock` writes the resolution (compatible pins kept, "
        "every hash from the index): review its diff and commit it."
    )


def lock(path: Path, command: list[str]) -> None:
    """Resolve with the current lock's pins preferred, replace the lock with the result and stamp it."""
    with tempfile.TemporaryDirectory(prefix="lock-") as tmp:
        resolved = Path(tmp) / "resolved.lock"
        resolve(path, command, resolved)
        path.write_text(resolved.read_text())
    stamp(path)


USAGE = "usage: lockfile.py {stamp|check|hash} LOCKFILE | lockfile.py {lock|verify} LOCKFILE -- UV_COMPILE..."


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[0] in {"lock", "verify"} and argv[2] == "--":
        command, path, uv = argv[0], Path(argv[1]), argv[3:]
        try:
            if command == "lock":
                lock(path, uv)
                return 0
            problem = verify(path, uv)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        if problem:
            print(problem, file=sys.stderr)
            return 1
        print(f"{path.name}: every pin and hash is what {PYPROJECT.name} resolves to")
        return 0
    if len(argv) != 2 or argv[0] not in {"stamp", "check", "hash"}:
        print(USAGE, file=sys.stderr)
        return 2
    command, path = argv[0], Path(argv[1])
    if command == "hash":
        print(inputs_hash())
        return 0
    if command == "stamp":
        stamp(path)
        return 0
    problem = check(path)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    print(f"{path.name} is in step with {PYPROJECT.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
