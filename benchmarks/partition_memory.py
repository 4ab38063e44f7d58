"""Benchmark: peak memory of one whole full-scale partition, collected live from the emulator through to its
public files, in one fresh process (issue 11: under 1 GiB).

Setup, in this process: the local stack at full scale (the emulator's whole catalogue, 50 subscriptions x 50 URL
locations of SPS quota, its default drift of 3% of series a step) and the committed steady state of the partition
before (one whole desired-count cycle merged from the emulator's catalogue: ~560k series, benchmarks/
steady_state.py), as in production after the first cycle.

The partition is the day's first collection (data time 00:00 UTC): it also writes the day's checkpoint of every
series to DynamoDB, the heaviest partition of a day. One run of the whole 10-minute job for it, at its data time,
in a fresh process (benchmarks/run_peak.py, its peak RSS from the kernel): prices, eviction rates and SPS collected
live over HTTP from the emulator (with no request pool stored, SPS builds one from the partition's prices), the
merge, the DynamoDB load, the public files. Also reported: each step's duration and sampled peak (Dagster
metadata), and the DynamoDB items the partition wrote and how long the load took against moto's server.

Run: `python -m benchmarks.partition_memory [--scale full|small] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from benchmarks.steady_state import CACHE, CYCLE, RawInputs, keys_before

PARTITION = "2026-11-27-23:50"  # data time 2026-11-28 00:00: the day's first collection, with its checkpoint


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="full", choices=("small", "full"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--partition", default=PARTITION)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--json", action="store_true", help="print the JSON summary as the last stdout line")
    args = parser.parse_args(argv)

    from benchmarks.run_peak import run_measured
    from spotlake_assets.core import names
    from spotlake_assets.core.timekeys import data_time
    from spotlake_assets.defs import build_resources
    from spotlake_assets.local.drift import DEFAULT_DRIFT_RATE
    from spotlake_assets.local.stack import stack_environ, start_local_stack, use_stack_environment

    inputs = RawInputs(args.seed, args.scale, DEFAULT_DRIFT_RATE, args.cache)
    started = time.perf_counter()
    inputs.ensure(keys_before(args.partition, CYCLE))
    with start_local_stack(seed=args.seed, scale=args.scale) as stack:
        use_stack_environment(stack)
        resources = build_resources(stack.settings)
        series = inputs.commit_steady_state(resources, args.partition)
        print(f"partition: steady state ready in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        t = data_time(args.partition)
        stack.emulator.set_time(t)
        run = run_measured(stack_environ(stack, os.environ), args.cache / "dagster_home", args.partition, t)
    assets = run["assets"]
    if run["exit"] != 0 or names.PUBLIC_OUTPUTS not in assets:
        raise SystemExit(f"the partition's run failed: exit {run['exit']}, materialized {sorted(assets)}")
    history = assets[names.HISTORY]
    summary = {
        "partition_peak_rss_mib": run["peak_rss_mib"],
        "partition_s": run["seconds"],
        "partition_scale": args.scale,
        "partition_state_series": series,
        "partition_items_written": history.get("items_written"),
        "partition_history_load_s": history.get("duration_s"),
        "partition_checkpoint_items": history.get("checkpoint_items"),
        "partition_steps": {
            asset: {k: v for k, v in meta.items() if k in ("duration_s", "peak_rss_mib")}
            for asset, meta in assets.items()
            if "duration_s" in meta
        },
    }
    print(
        f"partition: {args.partition} collected to outputs in {run['seconds']:.0f} s, peak RSS "
        f"{run['peak_rss_mib']} MiB, {summary['partition_items_written']} DynamoDB items in "
        f"{summary['partition_history_load_s']} s",
        file=sys.stderr,
        flush=True,
    )
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
