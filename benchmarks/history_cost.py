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

The archive (issue 16): every month goes to S3 (spotlake_assets/core/archive.py) and DynamoDB's TTL deletes an item
RETENTION (40 days) after its Time once its month is archived and verified. Its size is measured from the same
partitions: the Parquet of their changed rows as ONE file (the archive writes one file per bucket per month, a
bucket holding ~1/64 of a month's rows, far more than the measured partitions: more rows compress better, so the
per-row size measured here is an upper bound), the Parquet of one day's checkpoint, and the query API's lookup
files (one gzip JSON per market and month of its DynamoDB items, `expires_at` included); scaled to a month
(144 partitions x 30 days, 30 checkpoints). The items with `expires_at` (+16 bytes) are priced again for the
write units and the storage. `project_month` gives the bill of month n with and without the archive. Prices (USD,
S3 Standard, us-west-2 = us-east-1 list prices, https://aws.amazon.com/s3/pricing/): $0.023 per GB-month (first
50 TB), $0.005 per 1,000 PUT, $0.0004 per 1,000 GET; TTL deletes are free and consume no write throughput.

Run: `python -m benchmarks.history_cost [--scale small|full] [--cache build/bench/merge] [--json]` after the merge
benchmark (same scale).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.merge_bench import CYCLE, DEFAULT_CACHE, PARTITIONS
from spotlake_assets.core.archive_keys import EXPIRY_ATTRIBUTE, RETENTION, expires_at
from spotlake_assets.core.item_size import item_size

WRITE_USD_PER_MILLION = 0.625
READ_USD_PER_MILLION = 0.125
STORAGE_USD_PER_GB_MONTH = 0.25
STORAGE_OVERHEAD_BYTES = 100
PARTITIONS_PER_DAY = 144
DAYS_PER_MONTH = 30
GB = 10**9  # AWS bills storage per GB (10^9 bytes)
ALTERNATIVES = ("single", "grouped_compact")
# The archive (S3 Standard, us-west-2 = us-east-1 list prices) and the TTL.
S3_STORAGE_USD_PER_GB_MONTH = 0.023
S3_PUT_USD_PER_THOUSAND = 0.005
S3_GET_USD_PER_THOUSAND = 0.0004
RETENTION_DAYS = RETENTION.days  # 40
ARCHIVE_VERIFIED_AFTER_DAYS = 1  # a month's archive is built and verified within a day of its end
TTL_DELETE_LAG_DAYS = 2  # "DynamoDB typically deletes expired items within two days of expiration"
ARCHIVE_INDEX_FILES = 3  # a month's manifest, its verification record, the index of verified months
PROJECTED_MONTHS = (1, 12, 60, 120)
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
    from spotlake_assets.core.history_items import row_items

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


def with_ttl(item: dict[str, Any]) -> dict[str, Any]:
    """A point item or checkpoint with the TTL attribute the archive adds: its Time (sk) / AsOf + RETENTION."""
    time = item["AsOf"]["S"] if "AsOf" in item else item["sk"]["S"]
    return {**item, EXPIRY_ATTRIBUTE: {"N": str(expires_at(time))}}


def mean_hold_days(
    retention: float = RETENTION_DAYS,
    month_days: float = DAYS_PER_MONTH,
    verified_after: float = ARCHIVE_VERIFIED_AFTER_DAYS,
    delete_lag: float = TTL_DELETE_LAG_DAYS,
) -> float:
    """Mean days an item stays in DynamoDB with the archive, over items spread evenly over a month.

    An item of time t (days from its month's start) expires at t + retention, but TTL deletes only once its month
    is verified (month_days + verified_after), and DynamoDB deletes within delete_lag of that: it stays
    max(retention, month_days + verified_after - t) + delete_lag. Exact mean over t in [0, month_days)."""
    reach = min(max(month_days + verified_after - retention, 0.0), month_days)  # items held past their expiry
    waiting = (month_days + verified_after) * reach - reach**2 / 2  # integral of (L + v - t) over [0, reach)
    return (waiting + retention * (month_days - reach)) / month_days + delete_lag


@dataclass(frozen=True)
class Monthly:
    """What the projection needs, per month of operation (full-scale measures)."""

    write_units: float  # DynamoDB write units per month, items without the TTL attribute
    storage_bytes_per_day: float  # DynamoDB storage each day of history adds, without the TTL attribute
    write_units_ttl: float  # the same with `expires_at`
    storage_bytes_per_day_ttl: float
    archive_bytes: float  # the S3 archive of one month
    archive_puts: float  # files written per month
    archive_gets: float  # objects read per month (the build's inputs + verification)
    hold_days: float = mean_hold_days()


def project_month(n: int, m: Monthly, archive: bool) -> dict[str, float]:
    """The bill (USD) of month n (1-based) of operation, by part. Without the archive DynamoDB keeps everything:
    the storage of 30 x n days of history. With it, DynamoDB keeps min(30 x n, hold_days) days, and S3 the
    archive of n months (counted from month 1 and every month: conservative by one month, the archive of month k
    being written at its end), the PUTs and GETs of one month's archive; TTL deletes are free."""
    if n < 1:
        raise ValueError(f"month {n} of operation: months count from 1")
    days = DAYS_PER_MONTH * n
    if not archive:
        parts = {
            "dynamodb_writes": m.write_units / 1e6 * WRITE_USD_PER_MILLION,
            "dynamodb_storage": m.storage_bytes_per_day * days / GB * STORAGE_USD_PER_GB_MONTH,
        }
    else:
        parts = {
            "dynamodb_writes": m.write_units_ttl / 1e6 * WRITE_USD_PER_MILLION,
            "dynamodb_storage": m.storage_bytes_per_day_ttl * min(days, m.hold_days) / GB * STORAGE_USD_PER_GB_MONTH,
            "s3_storage": m.archive_bytes * n / GB * S3_STORAGE_USD_PER_GB_MONTH,
            "s3_puts": m.archive_puts / 1000 * S3_PUT_USD_PER_THOUSAND,
            "s3_gets": m.archive_gets / 1000 * S3_GET_USD_PER_THOUSAND,
        }
    return {**parts, "total": sum(parts.values())}


def archive_sizes(changed, state_rows, as_of: str, points: list[list[dict]], checkpoints: list[dict]) -> dict:  # noqa: ANN001
    """Bytes of the archive's files built from the measured partitions (`points`: the items of each, with TTL)
    and one day's checkpoint (`checkpoints`: its items, with TTL), and their scale to a month."""
    import pandas as pd

    from spotlake_assets.core import archive

    measured = len(changed)
    changes = archive.archive_rows(pd.concat(changed, ignore_index=True))
    changes_bytes = len(archive.parquet_bytes(changes))
    checkpoint_bytes = len(archive.parquet_bytes(archive.checkpoint_rows(state_rows, as_of)))
    buckets = archive.buckets(changes).nunique()
    # the lookup files: points and checkpoints apart, as they scale differently; a file's fixed part (gzip header
    # and trailer, the JSON wrapper) once per market and month
    by_pk: dict[str, list[dict]] = defaultdict(list)
    for partition in points:
        for item in partition:
            by_pk[item["pk"]["S"]].append(item)
    empty = len(archive.lookup_file([]))
    lookup_points = sum(len(archive.lookup_file(items)) - empty for items in by_pk.values())
    lookup_checkpoints = sum(len(archive.lookup_file([item])) - empty for item in checkpoints)
    markets = len({item["pk"]["S"] for item in checkpoints} | set(by_pk))
    partitions_per_month = PARTITIONS_PER_DAY * DAYS_PER_MONTH
    parquet = changes_bytes * partitions_per_month / measured
    checkpoint_parquet = checkpoint_bytes * DAYS_PER_MONTH
    lookup = lookup_points * partitions_per_month / measured + lookup_checkpoints * DAYS_PER_MONTH + empty * markets
    files = buckets + buckets + markets + ARCHIVE_INDEX_FILES
    return {
        "measured_partitions": measured,
        "measured_changed_rows": len(changes),
        "measured_changes_parquet_bytes": changes_bytes,
        "changes_parquet_bytes_per_row": round(changes_bytes / max(len(changes), 1), 2),
        "measured_checkpoint_parquet_bytes": checkpoint_bytes,
        "measured_lookup_points_bytes": lookup_points,
        "measured_lookup_checkpoint_bytes": lookup_checkpoints,
        "buckets": int(buckets),
        "markets": markets,
        "parquet_bytes_per_month": round(parquet),
        "checkpoint_bytes_per_month": round(checkpoint_parquet),
        "lookup_bytes_per_month": round(lookup),
        "bytes_per_month": round(parquet + checkpoint_parquet + lookup),
        "files_per_month": files,
        # the build reads every partition's change frame and each day's state; verification reads every file again
        "gets_per_month": partitions_per_month + DAYS_PER_MONTH + files,
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
    # the archive: the same items with `expires_at`, and the archive's files of the same partitions
    points_ttl = [[with_ttl(i) for i in p] for p in points]
    checkpoints_ttl = [with_ttl(i) for i in checkpoints]
    ttl = shape_costs(points_ttl, updates, checkpoints_ttl, regions_items)
    sizes = archive_sizes(changed, state.series, as_of, points_ttl, checkpoints_ttl)
    monthly = Monthly(
        write_units=today["write_units_per_day"] * DAYS_PER_MONTH,
        storage_bytes_per_day=today["storage_bytes_per_day"],
        write_units_ttl=ttl["write_units_per_day"] * DAYS_PER_MONTH,
        storage_bytes_per_day_ttl=ttl["storage_bytes_per_day"],
        archive_bytes=sizes["bytes_per_month"],
        archive_puts=sizes["files_per_month"],
        archive_gets=sizes["gets_per_month"],
    )
    projection = {
        f"month_{n}": {
            kind: {part: round(usd, 2) for part, usd in project_month(n, monthly, archive=kind == "archive").items()}
            for kind in ("archive", "no_archive")
        }
        for n in PROJECTED_MONTHS
    }
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
        # ten years (issue 16): month n of operation, with the archive (adopted) and without
        **{f"history_cost_usd_month_{n}": projection[f"month_{n}"]["archive"]["total"] for n in PROJECTED_MONTHS},
        **{f"history_cost_usd_month_{n}_no_archive": projection[f"month_{n}"]["no_archive"]["total"]
           for n in PROJECTED_MONTHS},
        "history_cost_ratio_month_60": round(
            projection["month_60"]["archive"]["total"] / projection["month_60"]["no_archive"]["total"], 3),
        "archive_bytes_per_month": sizes["bytes_per_month"],
        "archive_parquet_bytes_per_month": sizes["parquet_bytes_per_month"],
        "archive_checkpoint_bytes_per_month": sizes["checkpoint_bytes_per_month"],
        "archive_lookup_bytes_per_month": sizes["lookup_bytes_per_month"],
        "archive_files_per_month": sizes["files_per_month"],
        "dynamodb_hold_days": round(monthly.hold_days, 2),
        "dynamodb_storage_bytes_steady_state": round(monthly.storage_bytes_per_day_ttl * monthly.hold_days),
        "dynamodb_write_units_per_partition_ttl": ttl["write_units_per_partition"],
        "dynamodb_checkpoint_write_units_per_day_ttl": ttl["checkpoint_write_units_per_day"],
        "dynamodb_storage_bytes_per_day_ttl": ttl["storage_bytes_per_day"],
        "archive_prices": {
            "source": "S3 Standard, us-west-2 (us-east-1 list prices); TTL deletes free",
            "storage_usd_per_gb_month": S3_STORAGE_USD_PER_GB_MONTH,
            "put_usd_per_thousand": S3_PUT_USD_PER_THOUSAND,
            "get_usd_per_thousand": S3_GET_USD_PER_THOUSAND,
        },
        "archive": sizes,
        "projection": projection,
        "shapes": {**shapes, "today_ttl": ttl},
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
