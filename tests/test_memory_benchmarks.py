"""The graph-memory benchmarks (benchmarks/partition_memory.py, benchmarks/backfill_memory.py) run end to end at
small scale, each run in a fresh process on a real local stack, and print the keys `make bench` reports."""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.bench import BENCHMARKS


def run_benchmark(module: str, *options: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", module, "--json", "--scale", "small", *options],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_partition_live_from_the_emulator_to_the_public_files(tmp_path):
    summary = run_benchmark("benchmarks.partition_memory", "--cache", str(tmp_path))
    assert set(BENCHMARKS["partition"][1]) <= set(summary)
    # the child's own peak: a Dagster run process holds more than an interpreter, far less than the stack's parent
    assert 100 < summary["partition_peak_rss_mib"] < 2048
    assert summary["partition_items_written"] > 0 and summary["partition_checkpoint_items"] > 0
    steps = summary["partition_steps"]
    assert {"azure_price_raw", "azure_sps_raw", "azure_spot_snapshot", "azure_public_outputs"} <= set(steps)


def test_backfills_of_two_lengths_each_merge_every_partition(tmp_path):
    summary = run_benchmark("benchmarks.backfill_memory", "--partitions", "3,2", "--cache", str(tmp_path))
    for n in (2, 3):
        assert 100 < summary[f"backfill_peak_rss_mib_{n}"] < 2048
        assert summary[f"backfill_items_per_partition_{n}"] > 0
    assert summary["backfill_peak_ratio_3_to_2"] > 0
    assert summary["backfill_state_series"] > 0
    # the full-scale keys `make bench` reports are the ones the default lengths print
    assert {"backfill_peak_rss_mib_6", "backfill_peak_rss_mib_144"} <= set(BENCHMARKS["backfill"][1])
