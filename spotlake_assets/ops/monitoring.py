"""Duration and memory of a block of work, and the legacy monitoring files that record them.

The legacy collector stored each run's duration and RSS samples (every 10 s) under
`rawdata/azure/monitoring/{executionTime,memory}/YYYY/MM/DD/`; `measure()` produces the same numbers for a
materialization (plus a peak, sampled every 0.2 s) and `monitoring_documents()` turns them into those files.

Extension: the legacy listing leaves it open, so the files are `.json`: a few hundred bytes, read by operators
and tools, and JSON needs no library to open (unlike the Parquet used for data).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psutil

MONITORING_PREFIX = "rawdata/azure/monitoring"
MONITORING_KINDS = ("executionTime", "memory")
TIME_FMT = "%Y-%m-%d %H:%M:%S"  # the legacy `Time` column format

# what each document keeps from a measurement (plus `rows` when the caller added it)
_FIELDS = {
    "executionTime": ("duration_s", "rows"),
    "memory": ("peak_rss_mib", "rss_mib", "rss_samples"),
}


def _rss_mib(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


@contextmanager
def measure(sample_every_s: float = 0.2, record_every_s: float = 10.0) -> Iterator[dict[str, Any]]:
    """Measure the block: yields a dict filled at exit with `duration_s` (wall), `rss_mib` (RSS at the end)
    and `peak_rss_mib` (max of the samples and the end value), all rounded.

    A daemon thread samples the process's RSS every `sample_every_s`; every `record_every_s` (from the start)
    it also appends `(offset_s, rss_mib)` to the dict's `rss_samples` list, which grows while the block runs.
    A spike shorter than one sampling interval can be missed: the peak is a lower bound.
    """
    process = psutil.Process()
    out: dict[str, Any] = {"rss_samples": []}
    stop = threading.Event()
    start = time.perf_counter()
    peak = _rss_mib(process)

    def sample() -> None:
        nonlocal peak
        next_record = 0.0
        while True:
            rss = _rss_mib(process)
            peak = max(peak, rss)
            offset = time.perf_counter() - start
            if offset >= next_record:
                out["rss_samples"].append((round(offset, 1), round(rss, 1)))
                next_record += record_every_s
            if stop.wait(sample_every_s):
                return

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


def monitoring_keys(data_time: datetime) -> dict[str, str]:
    """Legacy monitoring keys for a partition's data time (naive times are taken as UTC), e.g.
    {"executionTime": "rawdata/azure/monitoring/executionTime/2026/11/28/10-20.json", "memory": ...}."""
    t = _utc(data_time)
    return {kind: f"{MONITORING_PREFIX}/{kind}/{t:%Y/%m/%d/%H-%M}.json" for kind in MONITORING_KINDS}


def monitoring_documents(
    data_time: datetime, measurements: Mapping[str, Mapping[str, Any]]
) -> dict[str, bytes]:
    """The monitoring files of one partition: S3 key -> JSON bytes.

    `measurements` maps a name (asset or step) to what `measure()` filled, optionally with `rows` added; one
    document per kind gathers every name so that a single writer stores the partition's files. The bytes are
    deterministic (sorted keys) so a re-run with the same numbers writes the same object.
    """
    t = _utc(data_time)
    documents: dict[str, bytes] = {}
    for kind, key in monitoring_keys(t).items():
        body = {
            "Time": t.strftime(TIME_FMT),
            "measurements": {
                name: {field: m[field] for field in _FIELDS[kind] if field in m}
                for name, m in measurements.items()
            },
        }
        documents[key] = json.dumps(body, sort_keys=True).encode()
    return documents


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
