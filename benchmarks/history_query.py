"""History store at realistic volume: write a month of one instance type's changes, then query it.

Run: `python -m benchmarks.history_query [--days 30] [--all-regions-days 3] [--seed 0]` (about 6 minutes). It
starts a moto server (the local stack's DynamoDB), writes the changed rows of every region, zone and desired
count plus daily checkpoints through HistoryTable, and prints the write time, then the query time, records,
calls and items read (as DynamoDB counts them, `ScannedCount`) for one region over the whole month.

The all-regions queries run on a second table of `--all-regions-days` only: moto sorts the whole table for
every Query (DynamoDB reads only the asked partition), so against a month-sized table each of their ~160 calls
takes seconds and the run would take tens of minutes. They show one day of all regions, and the whole
`--all-regions-days` refused by the 20,000-point cap with the exact count. Times are moto's; items read and
calls are what DynamoDB bills.

The synthetic history (also used by tests/test_history_query.py) follows docs/design.md "Partitions and time": every 10
minutes a region's price moves with probability `price_change_rate` (a point for each of its series), and each
series at the partition's desired count gets a new Score/T2/T3 with probability `score_change_rate`.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from spotlake_assets.core.azure_regions import region_table
from spotlake_assets.core.timekeys import DESIRED_COUNT_CYCLE, PARTITION_LENGTH
from spotlake_assets.core.transforms.state import ROW_COLUMNS

ZONES = ("1", "2", "3", "Single")
TIER = "Standard"


def public_region_names() -> list[str]:
    """Display names of the public Azure regions of the local catalogue (about 60)."""
    return [r.display_name for r in region_table() if not r.sovereign]


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
    """Write the points and the checkpoints with a HistoryTable; returns the items written."""
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


def timed_query(client: Any, table: str, label: str, **request: Any) -> str:
    """One query_history call: its time, the items DynamoDB read, the calls sent, and what came back."""
    from resources.query_api.reader import query_history

    counter = OperationCounter(client)
    began = time.perf_counter()
    try:
        found = f"{len(query_history(client, table_name=table, **request))} records"
    except ValueError as exc:
        found = f"refused: {exc}"
    elapsed = time.perf_counter() - began
    return (
        f"{label:<34} {elapsed:7.2f} s {counter.items_read:>7} items read {len(counter.calls):>4} calls "
        f"({', '.join(sorted(set(counter.calls)))})  {found}"
    )


def load(endpoint: str, instance_type: str, start: datetime, days: float, seed: int) -> str:
    """A new table holding `days` of synthetic history; prints the generate and write times."""
    from resources.history_table import HistoryTable

    began = time.perf_counter()
    synthetic = synthetic_history(instance_type, start, days, seed=seed)
    print(f"{days:g} days: generated {len(synthetic.points)} points in {time.perf_counter() - began:.1f} s")
    history = HistoryTable(
        table_name=f"azure-bench-{uuid.uuid4().hex[:8]}", endpoint_url=endpoint, write_workers=16
    )
    history.ensure_table()
    began = time.perf_counter()
    written = write_history(history, synthetic)
    elapsed = time.perf_counter() - began
    print(
        f"{days:g} days: wrote {written} items in {elapsed:.1f} s ({written / elapsed:.0f} items/s into moto)"
    )
    return history.table_name


def main(argv: list[str] | None = None) -> int:
    from spotlake_assets.local.aws import LOCAL_AWS_ENV, local_client, start_moto_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--all-regions-days", type=float, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = datetime(2026, 11, 1)
    request = dict(instance_type="D2s_v3", start=start.date().isoformat())
    os.environ.update(LOCAL_AWS_ENV)  # moto only: fake credentials for the boto3 chain
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    local = start_moto_server()
    try:
        client = local_client("dynamodb", local.endpoint_url, "us-west-2")
        month = load(local.endpoint_url, request["instance_type"], start, args.days, args.seed)
        end = (start + timedelta(days=args.days)).date().isoformat()
        print(
            timed_query(
                client, month, f"one region, {args.days:g} days", region="US East", end=end, **request
            )
        )
        few = load(local.endpoint_url, request["instance_type"], start, args.all_regions_days, args.seed)
        print(timed_query(client, few, "all regions, one day", region="*", end=request["start"], **request))
        end = (start + timedelta(days=args.all_regions_days)).date().isoformat()
        print(
            timed_query(
                client, few, f"all regions, {args.all_regions_days:g} days", region="*", end=end, **request
            )
        )
    finally:
        local.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
