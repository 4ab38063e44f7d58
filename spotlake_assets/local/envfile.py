"""The running local stack's environment file, `.spotlake-local/stack.env` by default.

`spotlake local-stack` and `spotlake dev` write it once their stack is up and remove it when the stack stops;
`spotlake history` and `spotlake run-local --stack` read it to find the stack. Lines are `export NAME=value`
(values shell-quoted), so `source .spotlake-local/stack.env` points a shell at the stack. Standard library only: the
command line reads it without loading the stack.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_ENV_FILE = ROOT / ".spotlake-local" / "stack.env"


def render(env: Mapping[str, str]) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.items()))


def write_env_file(path: Path, env: Mapping[str, str]) -> str:
    """Write `env` to `path` atomically (readers never see half a file); returns the text written."""
    text = render(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return text


def read_env_file(path: Path) -> dict[str, str] | None:
    """The variables of an env file written by `write_env_file`; None when there is none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    env: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            env[name] = value
    return env


@contextlib.contextmanager
def published(path: Path, env: Mapping[str, str]) -> Iterator[None]:
    """`env` in the file at `path` for the duration; afterwards the file is removed, unless another stack has
    replaced it meanwhile (then it describes that one, which is still running)."""
    text = write_env_file(path, env)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            if path.read_text() == text:
                path.unlink()
