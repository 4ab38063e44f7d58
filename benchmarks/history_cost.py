"""Benchmark: what the DynamoDB history costs at full scale, today's item shape against the alternatives.

Input: the changed rows of the second desired-count cycle and the last state that `benchmarks/merge_bench.py`
leaves in its cache (full scale: ~620k series). The items are the ones the product would send: today's shape is
built by `resources.history_table.HistoryTable` itself (`write_points`, `write_checkpoint`) against a client
that records the requests instead of sending them; the single points by `row_items`, the encoder the product
wrote them with until issue 11 (and still builds every member from). Sizes follow DynamoDB's rules
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html): attribute names
plus values; a string is its UTF-8 bytes; a number 1 byte per two significant digits plus 1; a map or list 3
bytes plus its elements plus 1 byte per element; a string set the sum of its strings. A write costs its size
rounded up to 1 KB per item (PutItem in BatchWriteItem: per item; UpdateItem: the larger of the item before and
after, here the regions index item with all of its type's regions). Storage counts each item's size plus
100 bytes of per-item overhead.

Shapes:
- `today` (grouped, adopted in issue 11): one point item per (type, region, Time) holding all its changed series
  in a map keyed by the checkpoint's series id (`{zone}#{count:02d}#{tier}`), each value the row's attributes
  minus those the item already says (InstanceType, Region, Time); sk = Time. A daily checkpoint item per
  (type, region) holding every series of it, and a regions-index UpdateItem per instance type in each partition
  (a run's resource starts with an empty "already registered" cache).
- `single` (written until issue 11, still read): one point item per changed row (every row column, pk, sk, zk).
  Checkpoints and the regions index as today.
- `grouped_compact`: as `today`, each series a list of its values in a fixed order
  [InstanceTier, AvailabilityZone, OndemandPrice, SpotPrice, Savings, IF, Score, T2, T3] (DesiredCount is in
  the series id); checkpoints in the same compact form.

Prices (USD, on-demand, Standard table class, us-west-2 = us-east-1 list prices): $0.625 per million write
request units, $0.125 per million read request units, $0.25 per GB-month of storage (first 25 GB free,
ignored here). Reads depend on how often the history is queried and are not included. See docs/history-cost.md.

Run: `python -m benchmarks.history_cost [--cache build/bench/merge] [--json]` after the merge benchmark.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.merge_bench import CYCLE, DEFAULT_CACHE, PARTITIONS
from spotlake_assets.core.item_size import item_size

WRITE_USD_PER_MILLION = 0.625
READ_USD_PER_MILLION = 0.125
STORAGE_USD_PER_GB_MONTH = 0.25
STORAGE_OVERHEAD_BYTES = 100
PARTITIONS_PER_DAY = 144
DAYS_PER_MONTH = 30
GB = 10**9  # AWS bills storage per GB (10^9 bytes)
ALTERNATIVES = ("single", "grouped_compact")
# the compact list order
COMPACT = ["InstanceTier", "AvailabilityZone", "OndemandPrice", "SpotPrice", "Savings", "IF", "Score", "T2", "T3"]


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


class RecordingClient:
    """Stands in for the boto3 client: keeps the items of BatchWriteItem and the keys of UpdateItem."""

    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict:  # noqa: N803
        for requests in RequestItems.values():
            self.puts.extend(request["PutRequest"]["Item"] for request in requests)
        return {}

    def update_item(self, **request: Any) -> dict:
        self.updates.append(request)
        return {}


def recorded(write) -> RecordingClient:  # noqa: ANN001
    """The requests a fresh HistoryTable resource (one run) sends for `write(history)`."""
    from resources.history_table import HistoryTable

    history = HistoryTable(table_name="azure-bench")
    client = RecordingClient()
    history._client = client
    write(history)
    return client


def regions_index_items(series) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    """The regions index item of every instance type once all its regions are registered (steady state)."""
    from spotlake_assets.core import history_keys as keys

    regions: dict[str, set[str]] = defaultdict(set)
    for instance_type, region in zip(series["InstanceType"], series["Region"], strict=True):
        regions[keys.key_part(instance_type, name="InstanceType")].add(keys.key_part(region, name="Region"))
    return {
        type_key: {
            **{name: {"S": value} for name, value in keys.regions_index_key(type_key).items()},
            keys.REGIONS_ATTRIBUTE: {"SS": sorted(names)},
        }
        for type_key, names in regions.items()
    }


def single_points(rows) -> list[dict[str, Any]]:  # noqa: ANN001
    """The single-point items of `rows`: what `write_points` sent until issue 11 (one item per row)."""
    from resources.history_table import row_items

    return row_items(rows)


def compact(item: dict[str, Any]) -> dict[str, Any]:
    """A point item or checkpoint of today's shape with each `series` member as a list in the COMPACT order."""
    members = item["series"]["M"]
    return {**item, "series": {"M": {sid: {"L": [m["M"][n] for n in COMPACT]} for sid, m in members.items()}}}


def shape_costs(points: list[list[dict]], updates: list[list[dict]], checkpoints: list[dict], regions_items) -> dict:  # noqa: ANN001
    """Write units and bytes of one shape: per partition (mean over the partitions given) and per day."""
    per_partition = []
    for partition_points, partition_updates in zip(points, updates, strict=True):
        point_units = sum(write_units(item_size(i)) for i in partition_points)
        index_units = sum(
            write_units(item_size(regions_items[u["Key"]["pk"]["S"].split("#", 1)[0]])) for u in partition_updates
        )
        per_partition.append(
            {
                "items": len(partition_points),
                "point_units": point_units,
                "index_updates": len(partition_updates),
                "index_units": index_units,
                "bytes": sum(item_size(i) + STORAGE_OVERHEAD_BYTES for i in partition_points),
            }
        )
    checkpoint_units = sum(write_units(item_size(i)) for i in checkpoints)
    checkpoint_bytes = sum(item_size(i) + STORAGE_OVERHEAD_BYTES for i in checkpoints)
    mean = {key: statistics.mean(p[key] for p in per_partition) for key in per_partition[0]}
    units_per_day = PARTITIONS_PER_DAY * (mean["point_units"] + mean["index_units"]) + checkpoint_units
    bytes_per_day = PARTITIONS_PER_DAY * mean["bytes"] + checkpoint_bytes
    write_usd = units_per_day * DAYS_PER_MONTH / 1e6 * WRITE_USD_PER_MILLION
    storage_usd = bytes_per_day * DAYS_PER_MONTH / GB * STORAGE_USD_PER_GB_MONTH
    return {
        "point_items_per_partition": round(mean["items"]),
        "write_units_per_partition": round(mean["point_units"] + mean["index_units"]),
        "point_write_units_per_partition": round(mean["point_units"]),
        "index_update_units_per_partition": round(mean["index_units"]),
        "checkpoint_items_per_day": len(checkpoints),
        "checkpoint_write_units_per_day": checkpoint_units,
        "write_units_per_day": round(units_per_day),
        "storage_bytes_per_day": round(bytes_per_day),
        "mean_point_item_bytes": round(mean["bytes"] / max(mean["items"], 1) - STORAGE_OVERHEAD_BYTES),
        "write_usd_per_month": round(write_usd, 2),
        # storage grows by a month of history every month: this is what each month adds to the monthly bill
        "storage_usd_per_month_added_each_month": round(storage_usd, 2),
        "cost_usd_per_month": round(write_usd + storage_usd, 2),
        "storage_usd_per_month_after_12_months": round(12 * storage_usd, 2),
    }


def history_costs(cache: Path) -> dict:
    """Costs of every shape from the merge benchmark's cache (the second cycle's partitions)."""
    import pandas as pd

    from spotlake_assets.core.transforms.state import state_from_frame

    ours = cache / "ours"
    steps = range(PARTITIONS - CYCLE, PARTITIONS)
    changed = [pd.read_parquet(ours / f"{step:02d}.changed.parquet") for step in steps]
    state = state_from_frame(pd.read_parquet(ours / f"{PARTITIONS - 1:02d}.state.parquet"))
    as_of = state.series["Time"].max()

    runs = [recorded(lambda history, rows=rows: history.write_points(rows)) for rows in changed]
    checkpoint_run = recorded(lambda history: history.write_checkpoint(state.series, as_of))
    regions_items = regions_index_items(state.series)
    points = [run.puts for run in runs]
    updates = [run.updates for run in runs]
    checkpoints = checkpoint_run.puts
    shapes = {
        "today": shape_costs(points, updates, checkpoints, regions_items),
        "single": shape_costs([single_points(rows) for rows in changed], updates, checkpoints, regions_items),
        "grouped_compact": shape_costs(
            [[compact(i) for i in p] for p in points], updates, [compact(i) for i in checkpoints], regions_items
        ),
    }
    today = shapes["today"]
    return {
        "changed_rows_per_partition": round(statistics.mean(len(c) for c in changed)),
        "series": len(state.series),
        "partition_keys": len(checkpoint_run.puts),
        "prices": {
            "source": "on-demand, Standard table class, us-west-2",
            "write_usd_per_million_units": WRITE_USD_PER_MILLION,
            "read_usd_per_million_units": READ_USD_PER_MILLION,
            "storage_usd_per_gb_month": STORAGE_USD_PER_GB_MONTH,
        },
        "dynamodb_write_units_per_partition": today["write_units_per_partition"],
        "dynamodb_storage_bytes_per_day": today["storage_bytes_per_day"],
        "history_cost_usd_per_month": today["cost_usd_per_month"],
        **{f"dynamodb_write_units_per_partition_{name}": shapes[name]["write_units_per_partition"]
           for name in ALTERNATIVES},
        **{f"history_cost_usd_per_month_{name}": shapes[name]["cost_usd_per_month"] for name in ALTERNATIVES},
        "shapes": shapes,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", default="full", choices=("small", "full"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--json", action="store_true", help="print only the summary JSON")
    args = parser.parse_args(argv)
    result = history_costs(args.cache / f"{args.scale}-seed{args.seed}")
    if not args.json:
        for name, shape in result["shapes"].items():
            print(f"{name:>16}: {json.dumps(shape)}")
    print(json.dumps({key: value for key, value in result.items() if args.json or key != "shapes"}))
    return result


if __name__ == "__main__":
    main()
