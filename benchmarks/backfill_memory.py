"""Benchmark: peak memory of one-run backfills of 6 and of 144 full-scale partitions (issue 11: the 144-partition
peak within 1.5x the 6-partition one, i.e. memory constant in the range length).

Setup, in this process: the local stack (moto's server, the emulator); the raw snapshots of the day 2026-11-27
(partitions 00:00 .. 23:50) built from the emulator's catalogue and stored as the raw assets store them; the
committed steady state of the partition before the longest range (one whole desired-count cycle merged: ~560k
series at full scale), so that every partition merges onto a full-size state (benchmarks/steady_state.py).

Each range is then one run of the whole 10-minute job (raw imports, merge, DynamoDB load, public files) in a fresh
process (benchmarks/run_peak.py, its peak RSS from the kernel), its clock a day later so that the raw assets
import. The longest range runs first and ends at the day's last partition (data time 00:00 of the next day, which
also writes the day's checkpoint of every series); each shorter range re-runs the last partitions of it,
continuing the state the longest run committed before them: every run ends with the same partitions, so the peaks
differ by the range length only.

Drift rate 0.001 (`--drift-rate`), not the emulator's default 0.03: at 3% of series a step a full-scale
partition writes ~33k DynamoDB points (plus, at 00:00, 27.6k checkpoint items), and its load takes about 3
minutes against moto's server (`partition_history_load_s` of benchmarks/partition_memory.py, which keeps the
default rate): 144 partitions would take hours and gigabytes of moto data. At 0.1% a partition writes ~10k
points and the 144-partition run takes ~15 minutes here (Azure drifts less than the emulator: MAX_CHANGED_SHARE in
spotlake_assets/core/checks.py). The state,
the raw inputs, the snapshot and the checkpoint keep their full-scale size, and each partition's changes are
dropped before the next at any rate: the drift changes how long a partition takes, not how memory grows with the
range.

Run: `python -m benchmarks.backfill_memory [--partitions 144,6] [--scale full|small] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from benchmarks.steady_state import CACHE, RawInputs, partition_keys

DAY = "2026-11-27"
DRIFT_RATE = 0.001


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", default="144,6", help="range lengths, comma-separated (at most 144)")
    parser.add_argument("--scale", default="full", choices=("small", "full"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drift-rate", type=float, default=DRIFT_RATE)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--json", action="store_true", help="print the JSON summary as the last stdout line")
    args = parser.parse_args(argv)
    lengths = sorted({int(n) for n in args.partitions.split(",")}, reverse=True)
    if not 0 < lengths[-1] <= lengths[0] <= 144:
        parser.error("range lengths must be between 1 and 144")

    from benchmarks.run_peak import run_measured
    from spotlake_assets.core import names
    from spotlake_assets.core.timekeys import data_time
    from spotlake_assets.defs import build_resources
    from spotlake_assets.local.stack import stack_environ, start_local_stack, use_stack_environment

    day = partition_keys(f"{DAY}-00:00", 144)
    longest = day[-lengths[0] :]
    inputs = RawInputs(args.seed, args.scale, args.drift_rate, args.cache)
    started = time.perf_counter()
    inputs.ensure(longest)
    summary: dict = {"backfill_scale": args.scale, "backfill_drift_rate": args.drift_rate}
    with start_local_stack(seed=args.seed, scale=args.scale, drift_rate=args.drift_rate) as stack:
        use_stack_environment(stack)
        resources = build_resources(stack.settings)
        summary["backfill_state_series"] = inputs.commit_steady_state(resources, longest[0])
        inputs.store(resources, longest)
        print(f"backfill: inputs ready in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        env = stack_environ(stack, os.environ)
        now = data_time(day[-1]) + timedelta(days=1)  # every partition is past: the raw assets import
        for n in lengths:
            keys = day[-n:]
            run = run_measured(env, args.cache / "dagster_home", keys[0], now, range_end=keys[-1])
            merged = run["assets"].get(names.SNAPSHOT, {}).get("partitions", 0)
            if run["exit"] != 0 or merged != n:
                raise SystemExit(f"backfill of {n} partitions failed: exit {run['exit']}, {merged} merged")
            items = run["assets"].get(names.HISTORY, {}).get("items_written", 0)
            summary.update(
                {
                    f"backfill_peak_rss_mib_{n}": run["peak_rss_mib"],
                    f"backfill_s_{n}": run["seconds"],
                    f"backfill_items_per_partition_{n}": round(items / n),
                    f"backfill_steps_{n}": {
                        asset: {k: v for k, v in meta.items() if k in ("duration_s", "peak_rss_mib")}
                        for asset, meta in run["assets"].items()
                        if "duration_s" in meta
                    },
                }
            )
            print(
                f"backfill: {n} partitions in one run: peak RSS {run['peak_rss_mib']} MiB, {run['seconds']:.0f} s, "
                f"{items} DynamoDB items",
                file=sys.stderr,
                flush=True,
            )
    if len(lengths) > 1:
        ratio = summary[f"backfill_peak_rss_mib_{lengths[0]}"] / summary[f"backfill_peak_rss_mib_{lengths[-1]}"]
        summary[f"backfill_peak_ratio_{lengths[0]}_to_{lengths[-1]}"] = round(ratio, 3)
    if args.json:
        print(json.dumps(summary))
    else:
        print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
