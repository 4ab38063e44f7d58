"""What every `spotlake` command shares: its errors and their exit statuses, and the checks of SPOTLAKE_* settings and
arguments made before anything runs.

The entry point, spotlake_assets/cli.py, holds the operator commands (`history`, `import-legacy`); the development
stack's commands (`run-local`, `local-stack`, `dev`) are spotlake_assets/local/commands.py, which the production
image does not ship. Both raise these errors and cli.main reports them, so they live here, where either can import
them (a module run as `python -m spotlake_assets.cli` is `__main__`: its classes are not spotlake_assets.cli's).
"""

from __future__ import annotations

import argparse
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from .core.timekeys import PARTITION_FMT, PARTITION_MINUTES, data_time, newest_closed_partition, parse_partition_key

PARTITIONS_PER_DAY = 24 * 60 // PARTITION_MINUTES
START_A_STACK = "start one with `make dev` or `spotlake local-stack`"
EXIT_UNAVAILABLE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
EXIT_BROKEN_PIPE = 128 + 13  # as a shell reports a program ended by SIGPIPE


class UsageError(Exception):
    """A wrong argument or SPOTLAKE_* variable: one line, exit status 2."""


class Unavailable(Exception):
    """Something the command needs is missing or failed (no local stack, a taken port, AWS): one line, exit 1."""


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM, SIGHUP): one line saying what was done and what was not, exit 128 + the signal's number
    (130 for Ctrl-C)."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.status = 128 + signum


class Parser(argparse.ArgumentParser):
    """argparse's own errors in one line too (its default prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def checked_settings() -> Any:
    """The SPOTLAKE_* settings; a wrong one is a UsageError."""
    from resources.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


def local_settings(command: str) -> Any:
    found = checked_settings()
    if found.env != "local":
        raise UsageError(
            f"SPOTLAKE_ENV={found.env}: `spotlake {command}` runs on the embedded local stack, whose environment "
            "is local; unset SPOTLAKE_ENV or set it to local"
        )
    return found


def count(value: int, maximum: int, option: str = "--partitions") -> int:
    if not 1 <= value <= maximum:
        raise UsageError(f"{option} {value}: must be 1..{maximum}")
    return value


def closed_partition(value: str, option: str = "--end", now: datetime | None = None) -> str:
    """`value` as a partition key, if it names a 10-minute partition whose window has closed at `now`."""
    now = now or datetime.now(UTC)
    newest = newest_closed_partition(now)
    try:
        start = parse_partition_key(value.strip())
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is not a partition key: YYYY-MM-DD-HH:MM (UTC) on a 10-minute boundary, "
            f"e.g. {newest}"
        ) from None
    key = start.strftime(PARTITION_FMT)
    if start.minute % PARTITION_MINUTES:
        containing = (start - timedelta(minutes=start.minute % PARTITION_MINUTES)).strftime(PARTITION_FMT)
        raise UsageError(
            f"{option} {value!r} is not on a 10-minute boundary (HH:00, HH:10, ... HH:50); "
            f"the partition containing it is {containing}"
        )
    if data_time(key) > now:
        raise UsageError(
            f"{option} {key} is not closed yet (its window ends at {data_time(key):%Y-%m-%d %H:%M} UTC); "
            f"the newest closed partition is {newest}"
        )
    return key


def file_option(value: str, option: str) -> Path:
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"{option} {value}: is a directory, not a file")
    return path
