"""`make bench`: every full-scale benchmark, each in its own process, then one JSON object with their numbers.

Each sub-benchmark is a module run as `python -m <module> --json` that prints one JSON object as the last line
of its stdout; its keys are merged into the summary. Sub-benchmarks that are not written yet are listed with
the keys they will fill, which print as null (see HOOKS). Progress goes to stderr; the summary is the last line
of stdout.

Run: `python -m benchmarks.bench [--only merge,history] [--scale full] [--seed 0]`.
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
         "dynamodb_write_units_per_partition_grouped_compact", "history_cost_usd_per_month_grouped_compact"],
    ),
}  # fmt: skip

# Not written yet: they need the streaming IO of the asset graph. Each is to be a module like the ones above
# (`python -m <module> --json`, last stdout line a JSON object with these keys); add it to BENCHMARKS then.
# - partition_peak_rss_mib: one whole full-scale partition, collection to outputs, in one process;
# - backfill_peak_rss_mib_6 / _144: a backfill of 6 and of 144 partitions in one run.
HOOKS: dict[str, list[str]] = {
    "partition": ["partition_peak_rss_mib"],
    "backfill": ["backfill_peak_rss_mib_6", "backfill_peak_rss_mib_144"],
}


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
    summary.update({key: None for keys in HOOKS.values() for key in keys})
    details: dict = {}
    started = time.perf_counter()
    for name in chosen:
        module, _ = BENCHMARKS[name]
        print(f"bench: {name} ({module}) ...", file=sys.stderr, flush=True)
        begun = time.perf_counter()
        details[name] = run(module, ["--scale", args.scale, "--seed", str(args.seed)])
        # a key two benchmarks report keeps the first one's value
        summary.update({key: value for key, value in details[name].items() if summary.get(key, 0) is None})
        print(f"bench: {name} done in {time.perf_counter() - begun:.0f} s", file=sys.stderr, flush=True)
    summary["not_implemented"] = sorted(HOOKS)
    summary["bench_s"] = round(time.perf_counter() - started)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
