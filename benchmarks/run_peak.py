"""One run of a job in a fresh process, the way a run worker makes it (spotlake_assets.local.worker), and that
process's peak RSS.

Child: `python -m benchmarks.run_peak <worker arguments>` runs the worker's main, then prints one JSON line
{"exit": .., "peak_rss_mib": ..}. The peak is the kernel's high-water mark of the process's resident memory
(VmHWM of /proc/self/status). Not `getrusage(RUSAGE_SELF).ru_maxrss`: Linux records there, at exec, the peak of
the memory the process was forked from, so a child of a benchmark process holding the local stack (gigabytes of
emulator catalogue and moto data) would report the parent's peak instead of its own.

Parent: `run_measured` starts the child against a stack and a fresh Dagster instance, and reads back from that
instance what each asset's materializations recorded (duration, sampled peak RSS, rows, DynamoDB items).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def run_measured(
    stack_env: Mapping[str, str],
    home: Path,
    partition: str,
    now: datetime,
    *,
    range_end: str | None = None,
    job: str = "azure_collect_10min",
) -> dict[str, Any]:
    """Run `job` for `partition` (or the range `partition`..`range_end` in one run) in a fresh process with the
    clock at `now`; returns its exit code, wall time, peak RSS and per-asset metadata."""
    from spotlake_assets.local.dagster_home import fresh_instance

    fresh_instance(home)  # empty, for the worker to run in and this process to read
    cmd = [sys.executable, "-m", "benchmarks.run_peak", "--job", job, "--partition", partition,
           "--now", now.isoformat(), *(["--range-end", range_end] if range_end else [])]  # fmt: skip
    env = {**stack_env, "DAGSTER_HOME": str(home.resolve())}
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    child = json.loads(lines[-1]) if lines else {"exit": done.returncode, "peak_rss_mib": None}
    return {**child, "seconds": round(seconds, 1), "assets": asset_metadata(home)}


def asset_metadata(home: Path) -> dict[str, dict[str, Any]]:
    """Per asset of the instance's one run: partitions materialized, the step's duration and sampled peak RSS,
    and the sums of rows and DynamoDB items over its partitions where recorded."""
    from dagster import DagsterEventType, DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    out: dict[str, dict[str, Any]] = {}
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        for run in instance.get_runs():
            for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
                materialization = entry.get_dagster_event().event_specific_data.materialization
                values = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
                asset = out.setdefault(materialization.asset_key.to_user_string(), {"partitions": 0})
                asset["partitions"] += 1
                for key in ("duration_s", "peak_rss_mib"):  # the step's, alike on every partition
                    if key in values:
                        asset[key] = max(asset.get(key, 0), values[key])
                for key in ("items_written", "checkpoint_items"):  # the history's metadata: the run's totals
                    if key in values:
                        asset[key] = values[key]
    return out


def main(argv: list[str] | None = None) -> int:
    from spotlake_assets.local.worker import main as worker

    code = worker(argv)
    print(json.dumps({"exit": code, "peak_rss_mib": peak_rss_mib()}), flush=True)
    return code


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
