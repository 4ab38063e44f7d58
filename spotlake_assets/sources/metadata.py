"""Run metadata every collection records (the counts the legacy sent to CloudWatch)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil


@contextmanager
def measured() -> Iterator[dict[str, float]]:
    """Fills a dict with the wall time (s) of the block and the process's RSS at its end (MiB)."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["duration_s"] = round(time.perf_counter() - start, 3)
        out["rss_mib"] = round(psutil.Process().memory_info().rss / 2**20, 1)
