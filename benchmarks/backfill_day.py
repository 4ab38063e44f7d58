"""Benchmark: backfill one day (144 partitions, small scale) from stored raw snapshots in one run, against
running the partitions one by one; both must leave the same DynamoDB history.

Run: `python -m benchmarks.backfill_day [--partitions 144]`.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partitions", type=int, default=144)
    args = parser.parse_args()
    day = datetime(2026, 11, 25, tzinfo=UTC)
    keys = [(day + timedelta(minutes=10 * i)).strftime("%Y-%m-%d-%H:%M") for i in range(args.partitions)]
    from dagster import DagsterInstance

    from spotlake_assets.defs import build_resources
    from spotlake_assets.local.run import run_partitions, run_range
    from spotlake_assets.local.stack import start_local_stack, use_stack_environment

    with start_local_stack(seed=3, extra_env={"SPOTLAKE_PARTITION_START": keys[0]}) as stack:
        use_stack_environment(stack)
        resources = build_resources(stack.settings)
        history, store = resources["history"], resources["store"]

        start = time.perf_counter()
        report = run_partitions(stack, keys)
        one_by_one = time.perf_counter() - start
        assert report.success, report.failures[:5]
        items = sorted(map(str, _scan(history)))
        print(f"one by one: {len(keys)} partitions, {2 * len(keys)} runs (+1 pool run), {one_by_one:.0f} s, "
              f"{len(items)} DynamoDB items")

        for item in _scan(history):
            history.client.delete_item(TableName=history.table_name, Key={"pk": item["pk"], "sk": item["sk"]})
        for key in store.list_keys("dagster/azure/azure_spot") + store.list_keys("rawdata/azure/2026"):
            store.client.delete_object(Bucket=store.write_bucket, Key=key)

        with DagsterInstance.ephemeral() as instance:
            start = time.perf_counter()
            result = run_range(stack, keys, day + timedelta(days=2), instance)
            backfill = time.perf_counter() - start
            runs = len(instance.get_runs())
        assert result.success
        same = sorted(map(str, _scan(history))) == items
        print(f"backfill: {len(keys)} partitions in {runs} run(s), {backfill:.0f} s; "
              f"same DynamoDB history as one by one: {same}")


def _scan(history):
    pages = history.client.get_paginator("scan").paginate(TableName=history.table_name)
    return [item for page in pages for item in page["Items"]]


if __name__ == "__main__":
    main()
