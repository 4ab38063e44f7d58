"""The DAGSTER_HOME of `spotlake dev`: one `spotlake dev` at a time, and a fresh instance each start.

The embedded stack keeps S3 and DynamoDB in memory, so every `spotlake dev` starts with empty buckets and tables;
its Dagster instance starts empty too, or the UI would show partitions as materialized whose data is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

# Dagster's default SQLite storage under DAGSTER_HOME (dagster._core.instance.ref.InstanceRef.config_defaults):
# history/ holds runs.db and the runs' event logs, schedules/ the schedule and sensor state, storage/ the compute
# logs and other local artifacts. Anything else (dagster.yaml, the UI's .nux) is kept.
STORAGE_DIRS = ("history", "schedules", "storage")
LOCK_FILE = ".spotlake-dev.lock"
# `make dev`'s instance configuration (SPS pool, run queue, run retries), in the checkout
DEV_CONFIG = Path(__file__).resolve().parents[2] / "dagster.yaml"


class DagsterHomeInUse(RuntimeError):
    """Another `spotlake dev` holds this DAGSTER_HOME."""


@contextlib.contextmanager
def exclusive(home: Path) -> Iterator[None]:
    """Hold `home` for this process (an advisory lock the OS drops when the process ends, however it ends)."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise DagsterHomeInUse(f"another `spotlake dev` (pid {holder}) is using {home}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def fresh_instance(home: Path, dagster_yaml: Path = DEV_CONFIG) -> None:
    """`reset`, then the instance's storage created, before several run-worker processes share it (each would
    otherwise try to create the same SQLite tables at once)."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    reset(home, dagster_yaml)
    DagsterInstance.from_ref(InstanceRef.from_dir(str(home))).dispose()


def reset(home: Path, dagster_yaml: Path) -> None:
    """A fresh instance in `home` configured by `dagster_yaml`: its run, event, schedule and compute-log storage
    deleted. Call it while holding `exclusive(home)` and before `dagster dev` starts."""
    home.mkdir(parents=True, exist_ok=True)
    for name in STORAGE_DIRS:
        if (home / name).exists():
            shutil.rmtree(home / name)
    shutil.copyfile(dagster_yaml, home / "dagster.yaml")
