"""One run of a job in a process of its own, as a run worker is: the soak benchmark and the crash tests start it,
kill it and start it again (the retry an operator's instance would make).

    python -m spotlake_assets.local.worker --job azure_collect_10min --partition 2026-11-28-10:10 \\
        --now 2026-11-28T10:20:00+00:00 [--range-end 2026-11-28-11:00]

The environment points it at a stack (SPOTLAKE_* variables, as `spotlake local-stack` writes them) and at a
persistent Dagster instance (DAGSTER_HOME), shared with other workers, so that runs see each other in progress.
Exit 0 when the run succeeded, 1 when it failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from dagster import DagsterInstance

from resources.clock import Clock
from resources.settings import load_settings

from ..defs import build_definitions

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spotlake-worker", description=__doc__)
    parser.add_argument("--job", required=True)
    parser.add_argument("--partition", required=True, help="the partition, or the first of a range")
    parser.add_argument("--range-end", help="the last partition of a single-run range")
    parser.add_argument("--now", required=True, help="the run's clock (ISO 8601, UTC)")
    parser.add_argument("--azure-overrides", default="{}", help="Azure retry budgets as JSON (benchmarks)")
    args = parser.parse_args(argv)
    clock = Clock(frozen_at=datetime.fromisoformat(args.now).isoformat())
    defs = build_definitions(load_settings(), clock=clock, azure_overrides=json.loads(args.azure_overrides))
    job = defs.resolve_job_def(args.job)
    kwargs: dict = {"partition_key": args.partition}
    if args.range_end:
        kwargs = {
            "tags": {
                "dagster/asset_partition_range_start": args.partition,
                "dagster/asset_partition_range_end": args.range_end,
            }
        }
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET, **kwargs)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
