"""`make bench`: every full-scale benchmark, each in its own process, then one JSON object with their numbers.

Each sub-benchmark is a module run as `python -m <module> --json` that prints one JSON object as the last line
of its stdout; its keys are merged into the summary (the keys listed below print as null when their benchmark
was not chosen). Progress goes to stderr; the summary is the last line of stdout.

The production rehearsal (benchmarks/rehearsal.py) runs at its own scale (the emulator's small one: it rehearses
the orchestration, not the data volume) and seed; it takes 20 to 30 minutes and needs Debian's postgresql (the
Makefile's `bench` installs it where missing).

Run: `python -m benchmarks.bench [--only merge,history,partition,backfill,query_load,rehearsal] [--scale full]
[--seed 0]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

# name -> (module, keys it reports). Order matters: history prices the changed rows the merge benchmark caches.
BENCHMARKS: dict[str, tuple[str, list[str]]] = {
    "merge": (
        "benchmarks.merge_bench",
        ["merge_changes_s", "merge_changes_cpu_s", "merge_peak_rss_mib", "legacy_merge_changes_s",
         "legacy_merge_peak_rss_mib", "speedup_vs_legacy", "cpu_speedup_vs_legacy", "before_merge_changes_s",
         "before_merge_peak_rss_mib", "speedup_vs_before", "series", "changed_rows_per_partition"],
    ),
    "history": (
        "benchmarks.history_cost",
        ["dynamodb_write_units_per_partition", "dynamodb_storage_bytes_per_day", "history_cost_usd_per_month",
         "dynamodb_write_units_per_partition_single", "history_cost_usd_per_month_single",
         "dynamodb_write_units_per_partition_grouped_compact", "history_cost_usd_per_month_grouped_compact",
         "history_cost_usd_month_1", "history_cost_usd_month_12", "history_cost_usd_month_60",
         "history_cost_usd_month_120", "history_cost_usd_month_1_no_archive", "history_cost_usd_month_12_no_archive",
         "history_cost_usd_month_60_no_archive", "history_cost_usd_month_120_no_archive", "archive_bytes_per_month",
         "dynamodb_storage_bytes_steady_state"],
    ),
    # one whole partition, live from the emulator to the public files, in a fresh process
    "partition": (
        "benchmarks.partition_memory",
        ["partition_peak_rss_mib", "partition_s", "partition_items_written", "partition_checkpoint_items",
         "partition_history_load_s"],
    ),
    # one-run backfills of 144 and 6 partitions, each in a fresh process
    "backfill": (
        "benchmarks.backfill_memory",
        ["backfill_peak_rss_mib_6", "backfill_peak_rss_mib_144", "backfill_peak_ratio_144_to_6", "backfill_s_6",
         "backfill_s_144", "backfill_items_per_partition_144", "backfill_state_series", "backfill_drift_rate"],
    ),
    # the public query endpoint: a month of one type's history, the site's queries at 1, 8 and 32 clients
    "query_load": (
        "benchmarks.query_load",
        ["worst_allowed_read_units_before", "worst_allowed_read_units_after", "over_budget_read_units",
         "query_p50_s_8", "query_p95_s_8", "query_p50_s_32", "query_p95_s_32", "query_errors_8", "query_errors_32"],
    ),
    # production's instance, Postgres and processes with faults injected (its own scale and seed)
    "rehearsal": (
        "benchmarks.rehearsal",
        ["partitions_committed", "partitions_lost", "daemon_retries", "max_queue_wait_s", "hang_ended_after_s",
         "equal_to_fault_free"],
    ),
}  # fmt: skip
SCALED = {"merge", "history", "partition", "backfill"}  # the ones that take --scale and --seed


def run(module: str, options: list[str]) -> dict:
    """One sub-benchmark in a fresh process; its JSON summary (last stdout line)."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--json", *options], check=True, stdout=subprocess.PIPE, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help=f"comma-separated subset of {list(BENCHMARKS)}")
    parser.add_argument("--scale", default="full", choices=("small", "full"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; known: {list(BENCHMARKS)}")

    summary: dict = {key: None for _, keys in BENCHMARKS.values() for key in keys}
    details: dict = {}
    started = time.perf_counter()
    for name in chosen:
        module, _ = BENCHMARKS[name]
        print(f"bench: {name} ({module}) ...", file=sys.stderr, flush=True)
        begun = time.perf_counter()
        details[name] = run(module, ["--scale", args.scale, "--seed", str(args.seed)] if name in SCALED else [])
        # a key two benchmarks report keeps the first one's value
        summary.update({key: value for key, value in details[name].items() if summary.get(key, 0) is None})
        print(f"bench: {name} done in {time.perf_counter() - begun:.0f} s", file=sys.stderr, flush=True)
    summary["bench_s"] = round(time.perf_counter() - started)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
