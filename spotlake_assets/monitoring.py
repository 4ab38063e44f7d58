"""Duration and memory of a block of work, recorded as metadata of every materialization (the legacy test
environment logged RSS every 10 s; a sampled peak per materialization answers the same question in the UI)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psutil


def _rss_mib(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


@contextmanager
def measure(sample_every_s: float = 0.2) -> Iterator[dict[str, Any]]:
    """Measure the block: yields a dict filled at exit with `duration_s` (wall), `rss_mib` (RSS at the end)
    and `peak_rss_mib` (max of the samples and the end value), all rounded.

    A daemon thread samples the process's RSS every `sample_every_s`; a spike shorter than one sampling
    interval can be missed: the peak is a lower bound.
    """
    process = psutil.Process()
    out: dict[str, Any] = {}
    stop = threading.Event()
    start = time.perf_counter()
    peak = _rss_mib(process)

    def sample() -> None:
        nonlocal peak
        while not stop.wait(sample_every_s):
            peak = max(peak, _rss_mib(process))

    sampler = threading.Thread(target=sample, name="spotlake-rss-sampler", daemon=True)
    sampler.start()
    try:
        yield out
    finally:
        stop.set()
        sampler.join()
        end = _rss_mib(process)
        out["duration_s"] = round(time.perf_counter() - start, 3)
        out["rss_mib"] = round(end, 1)
        out["peak_rss_mib"] = round(max(peak, end), 1)


def run_metadata(measurement: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a measurement that every materialization records as Dagster metadata."""
    return {k: measurement[k] for k in ("duration_s", "peak_rss_mib", "rss_mib")}
