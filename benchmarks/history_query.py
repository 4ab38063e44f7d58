"""History store at realistic volume: write a month of one instance type's changes, then query it.

Run: `python -m benchmarks.history_query [--days 30] [--seed 0]`. It starts a moto server (the local stack's
DynamoDB), writes the changed rows of every region, zone and desired count plus daily checkpoints, and prints
the write time, then the query time, records and items read (as DynamoDB counts them, `ScannedCount`) for one
region over the month and for all regions over a day (a month of all regions is over the 20,000-point cap,
which the last line shows).

Times are moto's: moto sorts the whole table for every Query, so its query times grow with the table (a month:
seconds per call) where DynamoDB reads only the asked partition. Items read and calls are what DynamoDB bills.

The synthetic history (also used by tests/test_history_query.py) follows design.md "Partitions": every 10
minutes a region's price moves with probability `price_change_rate` (a point for each of its series), and each
series at the partition's desired count gets a new Score/T2/T3 with probability `score_change_rate`.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from spotlake_assets.partitions import DESIRED_COUNT_CYCLE, PARTITION_LENGTH
from spotlake_assets.transforms.state import ROW_COLUMNS

ZONES = ("1", "2", "3", "Single")
TIER = "Standard"


def public_region_names() -> list[str]:
    """Display names of the public Azure regions of the local catalogue (about 60)."""
    text = resources.files("spotlake_assets.local").joinpath("azure_regions.csv").read_text(encoding="utf-8")
    return [row["display_name"] for row in csv.DictReader(text.splitlines()) if row["sovereign"] != "true"]


@dataclass(frozen=True)
class SyntheticHistory:
    """`points`: every stored row (ROW_COLUMNS), in time order. `checkpoints`: the state (last point of every
    series) as of each UTC midnight, keyed by that `Time`."""

    points: pd.DataFrame
    checkpoints: dict[str, pd.DataFrame]


def synthetic_history(
    instance_type: str,
    start: datetime,
    days: float,
    *,
    regions: list[str] | None = None,
    price_change_rate: float = 0.01,
    score_change_rate: float = 0.1,
    seed: int = 0,
) -> SyntheticHistory:
    """The changed rows of one instance type from `start` (its first partition writes every series) for
    `days`, one partition every 10 minutes."""
    rng = np.random.default_rng(seed)
    regions = regions or public_region_names()
    grid = pd.MultiIndex.from_product(
        [range(len(regions)), ZONES, DESIRED_COUNT_CYCLE], names=["r", "zone", "dc"]
    ).to_frame(index=False)
    region_of = grid["r"].to_numpy()
    n = len(grid)
    ondemand = np.round(rng.uniform(0.05, 5.0, len(regions)), 6)[region_of]
    spot = np.round(ondemand * rng.uniform(0.1, 0.9, n), 6)
    eviction = np.where(rng.random(n) < 0.05, -1.0, np.round(rng.uniform(0, 20, n), 1))  # some IF missing
    score, t2, t3 = rng.integers(1, 4, n), np.zeros(n, int), np.zeros(n, int)
    last_time = np.empty(n, dtype=object)
    emitted: list[pd.DataFrame] = []
    checkpoints: dict[str, pd.DataFrame] = {}

    def rows(mask: np.ndarray, now: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "InstanceTier": TIER,
                "InstanceType": instance_type,
                "Region": np.asarray(regions, dtype=object)[region_of[mask]],
                "OndemandPrice": ondemand[mask],
                "SpotPrice": spot[mask],
                "Savings": np.round((1 - spot[mask] / ondemand[mask]) * 100, 2),
                "IF": eviction[mask],
                "DesiredCount": grid["dc"].to_numpy()[mask],
                "AvailabilityZone": grid["zone"].to_numpy()[mask],
                "Score": score[mask],
                "Time": now if mask.any() else [],
                "T2": t2[mask],
                "T3": t3[mask],
            }
        )[ROW_COLUMNS]

    for step in range(int(days * 24 * 6) + 1):
        now = start + step * PARTITION_LENGTH
        stamp = now.strftime("%Y-%m-%d %H:%M:%S")
        if step == 0:
            changed = np.ones(n, bool)
        else:
            moved = rng.random(len(regions)) < price_change_rate
            spot = np.where(moved[region_of], np.round(spot * rng.uniform(0.9, 1.1, n), 6), spot)
            asked = (grid["dc"].to_numpy() == DESIRED_COUNT_CYCLE[step % len(DESIRED_COUNT_CYCLE)]) & (
                rng.random(n) < score_change_rate
            )
            score = np.where(asked, rng.integers(1, 4, n), score)
            t3 = np.where(asked, np.where(score >= 3, grid["dc"].to_numpy(), 0), t3)
            t2 = np.where(asked, np.where(score >= 2, grid["dc"].to_numpy(), 0), t2)
            changed = moved[region_of] | asked
        last_time[changed] = stamp
        emitted.append(rows(changed, stamp))
        if now.hour == 0 and now.minute == 0:
            state = rows(np.ones(n, bool), stamp)
            checkpoints[stamp] = state.assign(Time=last_time)
    return SyntheticHistory(points=pd.concat(emitted, ignore_index=True), checkpoints=checkpoints)


def write_history(history: Any, synthetic: SyntheticHistory) -> int:
    """Write the points and the checkpoints with a DynamoDBHistory; returns the items written."""
    written = history.write_rows(synthetic.points)
    for as_of, state in synthetic.checkpoints.items():
        written += history.write_checkpoint(state, as_of)
    return written


class OperationCounter:
    """Counts the API calls of a boto3 client and the items DynamoDB read for them (`ScannedCount`)."""

    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        self.items_read = 0
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def _after(self, parsed: dict[str, Any], **_: Any) -> None:
        self.items_read += int(parsed.get("ScannedCount", 0)) + (1 if "Item" in parsed else 0)


def _timed_queries(
    client: Any, table: str, instance_type: str, start: datetime, days: float
) -> Iterator[str]:
    from spotlake_assets.history.query import query_history

    first = start.date().isoformat()
    last = (start + timedelta(days=days)).date().isoformat()
    cases = [
        ("one region, whole range", "US East", last),
        ("all regions, one day", "*", first),
        ("all regions, whole range", "*", last),
    ]
    for label, region, end in cases:
        counter = OperationCounter(client)
        began = time.perf_counter()
        try:
            records = query_history(
                client, table_name=table, instance_type=instance_type, region=region, start=first, end=end
            )
            found = f"{len(records)} records"
        except ValueError as exc:
            found = f"refused: {exc}"
        elapsed = time.perf_counter() - began
        yield (
            f"{label:<26} {elapsed:7.2f} s  {counter.items_read:>7} items read  "
            f"{len(counter.calls):>4} calls ({', '.join(sorted(set(counter.calls)))})  {found}"
        )


def main(argv: list[str] | None = None) -> int:
    from resources.dynamodb import DynamoDBHistory
    from spotlake_assets.local.aws import LOCAL_AWS_ENV, local_client, start_moto_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = datetime(2026, 11, 1)
    instance_type = "D2s_v3"

    began = time.perf_counter()
    synthetic = synthetic_history(instance_type, start, args.days, seed=args.seed)
    print(f"generated {len(synthetic.points)} points, {len(synthetic.checkpoints)} checkpoint days "
          f"in {time.perf_counter() - began:.1f} s")  # fmt: skip
    os.environ.update(LOCAL_AWS_ENV)  # moto only: fake credentials for the boto3 chain
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    local = start_moto_server()
    try:
        history = DynamoDBHistory(
            table_name=f"azure-bench-{uuid.uuid4().hex[:8]}",
            endpoint_url=local.endpoint_url,
            write_workers=16,
        )
        history.ensure_table()
        began = time.perf_counter()
        written = write_history(history, synthetic)
        elapsed = time.perf_counter() - began
        print(f"wrote {written} items in {elapsed:.1f} s ({written / elapsed:.0f} items/s against moto)")
        client = local_client("dynamodb", local.endpoint_url, history.region_name)
        for line in _timed_queries(client, history.table_name, instance_type, start, args.days):
            print(line)
    finally:
        local.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
