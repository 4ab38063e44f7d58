"""Benchmark: the merge (price x IF x SPS, T2/T3, change detection) at full scale, ours against the legacy.

Inputs are built once from the emulator's catalogue (spotlake_assets.local.snapshots: the frames the raw assets
would store, without HTTP, since the collection is not what is measured here and the catalogue gives the same
values in seconds) for two whole desired-count cycles (22 partitions from a day's 00:00), and cached as Parquet
under --cache. Each implementation then runs the 22 partitions from an empty state in a fresh process:
- `ours`: spotlake_assets.core.transforms.merge.merge_snapshot,
- `legacy`: benchmarks/legacy_merge.py (the legacy algorithm, faults fixed only to give the same result),
- `before`: tests/oracle_merge.py (our merge before the integer-key rewrite).
The first cycle grows the state to ~620k series; the reported time is the median over the second half of the
second cycle (desired counts 25..50). Every implementation must give the same rows, changes and state in every
partition (compared by digests of their Parquet bytes), else the benchmark fails.
Peak memory of one merge step is measured per implementation in another fresh process that loads the stored
state before a partition of the second cycle and that partition's inputs, resets the kernel's peak-RSS mark
(/proc/self/clear_refs) and merges once: the peak includes the state and inputs held in memory.

Ours also leaves in the cache the changed rows of every partition and the last state, which
benchmarks/history_cost.py prices. Run: `python -m benchmarks.merge_bench [--impls ours,legacy,before] [--json]`.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

CYCLE = 11
PARTITIONS = 2 * CYCLE
DAY = datetime(2026, 11, 27, tzinfo=UTC)
DEFAULT_CACHE = Path("build/bench/merge")
PEAK_PARTITION = PARTITIONS - 3  # desired count 40 of the second cycle
IMPLEMENTATIONS = ("ours", "legacy", "before")


def data_time(step: int) -> datetime:
    return DAY + timedelta(minutes=10 * step)


def desired_count(step: int) -> int:
    from spotlake_assets.core.timekeys import DESIRED_COUNT_CYCLE

    return DESIRED_COUNT_CYCLE[step % CYCLE]


def input_path(cache: Path, step: int, source: str) -> Path:
    return cache / "inputs" / f"{step:02d}.{source}.parquet"


def ensure_inputs(cache: Path, seed: int, scale: str) -> dict:
    """Build (once) the raw frames of every partition; returns what they hold."""
    manifest = cache / "inputs" / "manifest.json"
    wanted = {"seed": seed, "scale": scale, "partitions": PARTITIONS, "day": DAY.isoformat()}
    if manifest.exists() and json.loads(manifest.read_text()).get("key") == wanted:
        return json.loads(manifest.read_text())
    from spotlake_assets.local.snapshots import raw_snapshots

    manifest.parent.mkdir(parents=True, exist_ok=True)
    pool_price, sizes = None, {}
    started = time.perf_counter()
    for step in range(PARTITIONS):
        raw = raw_snapshots(seed, scale, data_time(step), desired_count(step), pool_price)
        pool_price = raw.price if pool_price is None else pool_price  # the day's pool: its first price snapshot
        for source in ("price", "eviction", "sps"):
            getattr(raw, source).to_parquet(input_path(cache, step, source), index=False)
        sizes = {"price_rows": len(raw.price), "eviction_rows": len(raw.eviction), "sps_rows": len(raw.sps)}
        print(f"inputs: partition {step + 1}/{PARTITIONS} built", file=sys.stderr, flush=True)
    doc = {"key": wanted, **sizes, "build_s": round(time.perf_counter() - started, 1)}
    manifest.write_text(json.dumps(doc))
    return doc


def load_inputs(cache: Path, step: int) -> dict:
    import pandas as pd

    return {source: pd.read_parquet(input_path(cache, step, source)) for source in ("price", "eviction", "sps")}


def merge_function(impl: str):  # noqa: ANN201
    """(price, eviction, sps, count, time, state) -> (rows, changed, state, new series) of an implementation."""
    if impl == "ours":
        from spotlake_assets.core.transforms.merge import merge_snapshot

        def ours(*args):  # noqa: ANN002, ANN202
            result = merge_snapshot(*args)
            return result.rows, result.changed, result.state, result.counts["new_series"]

        return ours
    if impl == "legacy":
        from benchmarks.legacy_merge import legacy_merge

        return legacy_merge
    if impl == "before":
        from tests.oracle_merge import merge_snapshot as before

        def oracle(*args):  # noqa: ANN002, ANN202
            result = before(*args)
            return result.rows, result.changed, result.state, result.counts["new_series"]

        return oracle
    raise ValueError(f"unknown implementation {impl!r}; expected one of {IMPLEMENTATIONS}")


def parquet_bytes(frame) -> bytes:  # noqa: ANN001
    """The IO manager's encoding (resources/io_manager.frame_to_parquet), so digests say "same stored bytes"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def digest(frame) -> str:  # noqa: ANN001
    return hashlib.sha256(parquet_bytes(frame)).hexdigest()[:16]


def peak_rss_reset() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak RSS since the last reset (VmHWM), else since the process started."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_cycles(impl: str, cache: Path) -> dict:
    """Run the 22 partitions from an empty state; per partition its wall and CPU seconds and result digests."""
    from spotlake_assets.core.transforms.state import state_to_frame

    merge = merge_function(impl)
    state, partitions = None, []
    for step in range(PARTITIONS):
        inputs = load_inputs(cache, step)
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        rows, changed, state, new_series = merge(
            inputs["price"], inputs["eviction"], inputs["sps"], desired_count(step), data_time(step), state
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        state_frame = state_to_frame(state)
        partitions.append(
            {
                "step": step,
                "desired_count": desired_count(step),
                "seconds": round(wall, 4),
                "cpu_seconds": round(cpu, 4),
                "rows": len(rows),
                "changed_rows": len(changed),
                "new_series": new_series,
                "series": len(state.series),
                "digests": [digest(rows), digest(changed), digest(state_frame)],
            }
        )
        if impl == "ours":  # what history_cost.py prices, and the states the peak-memory workers start from
            changed.to_parquet(cache / "ours" / f"{step:02d}.changed.parquet", index=False)
            if step == PEAK_PARTITION - 1 or step == PARTITIONS - 1:
                (cache / "ours" / f"{step:02d}.state.parquet").write_bytes(parquet_bytes(state_frame))
        print(f"{impl}: partition {step + 1}/{PARTITIONS} {wall:.2f} s", file=sys.stderr, flush=True)
    return {"impl": impl, "partitions": partitions}


def worker_peak(impl: str, cache: Path, step: int) -> dict:
    """One merge step on the stored state before partition `step`: peak RSS (state and inputs included)."""
    import pandas as pd

    from spotlake_assets.core.transforms.state import state_from_frame

    merge = merge_function(impl)
    state = state_from_frame(pd.read_parquet(cache / "ours" / f"{step - 1:02d}.state.parquet"))
    inputs = load_inputs(cache, step)
    gc.collect()
    before = peak_rss_mib() if peak_rss_reset() else None
    wall = time.perf_counter()
    merge(inputs["price"], inputs["eviction"], inputs["sps"], desired_count(step), data_time(step), state)
    wall = time.perf_counter() - wall
    return {
        "impl": impl,
        "step": step,
        "series_before": len(state.series),
        "rss_before_mib": None if before is None else round(before, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "seconds": round(wall, 3),
    }


def run_worker(*args: str) -> dict:
    """A worker in a fresh Python process; its JSON is the last line of its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.merge_bench", *args], check=True, stdout=subprocess.PIPE, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def second_half(partitions: list[dict], key: str) -> float:
    """Median of `key` over the second half of the last cycle (desired counts 25..50)."""
    tail = partitions[PARTITIONS - (CYCLE + 1) // 2 :]
    return round(statistics.median(p[key] for p in tail), 4)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", default="full", choices=("small", "full"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--impls", default=",".join(IMPLEMENTATIONS), help="comma-separated; ours always runs")
    parser.add_argument("--json", action="store_true", help="print only the summary JSON on stdout")
    parser.add_argument("--worker", choices=("cycles", "peak"), help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--step", type=int, default=PEAK_PARTITION, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cache = args.cache / f"{args.scale}-seed{args.seed}"

    if args.worker:  # a child: one measurement, JSON on the last line
        (cache / "ours").mkdir(parents=True, exist_ok=True)
        if args.worker == "cycles":
            result = worker_cycles(args.impl, cache)
        else:
            result = worker_peak(args.impl, cache, args.step)
        print(json.dumps(result))
        return result

    impls = ["ours", *[i for i in args.impls.split(",") if i and i != "ours"]]
    inputs = ensure_inputs(cache, args.seed, args.scale)
    common = ["--seed", str(args.seed), "--scale", args.scale, "--cache", str(args.cache)]
    cycles = {impl: run_worker(*common, "--worker", "cycles", "--impl", impl) for impl in impls}
    peaks = {impl: run_worker(*common, "--worker", "peak", "--impl", impl) for impl in impls}

    reference = [p["digests"] for p in cycles["ours"]["partitions"]]
    for impl in impls:
        differs = [p["step"] for p, want in zip(cycles[impl]["partitions"], reference, strict=True)
                   if p["digests"] != want]  # fmt: skip
        if differs:
            raise SystemExit(f"{impl} gives other rows/changes/state than ours in partitions {differs}")

    ours = cycles["ours"]["partitions"]
    summary: dict = {
        "scale": args.scale,
        "seed": args.seed,
        "markets": inputs["price_rows"],
        "sps_rows_per_partition": inputs["sps_rows"],
        "series": ours[-1]["series"],
        "changed_rows_per_partition": second_half(ours, "changed_rows"),
        "merge_changes_s": second_half(ours, "seconds"),
        "merge_changes_cpu_s": second_half(ours, "cpu_seconds"),
        "merge_peak_rss_mib": peaks["ours"]["peak_rss_mib"],
        "same_results": sorted(impls),
    }
    for impl in impls[1:]:
        summary[f"{impl}_merge_changes_s"] = second_half(cycles[impl]["partitions"], "seconds")
        summary[f"{impl}_merge_changes_cpu_s"] = second_half(cycles[impl]["partitions"], "cpu_seconds")
        summary[f"{impl}_merge_peak_rss_mib"] = peaks[impl]["peak_rss_mib"]
        summary[f"speedup_vs_{impl}"] = round(summary[f"{impl}_merge_changes_s"] / summary["merge_changes_s"], 1)
        summary[f"cpu_speedup_vs_{impl}"] = round(
            summary[f"{impl}_merge_changes_cpu_s"] / summary["merge_changes_cpu_s"], 1
        )
    if not args.json:
        for impl in impls:
            times = " ".join(f"{p['seconds']:.2f}" for p in cycles[impl]["partitions"])
            print(f"{impl:>7}: seconds per partition {times}; peak {peaks[impl]}")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
