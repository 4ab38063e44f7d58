"""The public files built from frames: latest JSON rows, deterministic CSV.gz, the grow-only selector."""

from __future__ import annotations

import gzip
import io
import json

import pandas as pd

from spotlake_assets.core.transforms.outputs import latest_frame, latest_json, merge_selector, snapshot_csv_gz
from spotlake_assets.core.transforms.state import MARKET_COLUMNS, ROW_COLUMNS, WORKLOAD_COLUMNS, make_state


def row(size: str, zone: str, count: int, t2: int = 0, t3: int = 0, region: str = "US East") -> dict:
    return {
        "InstanceTier": "Standard", "InstanceType": size, "Region": region, "OndemandPrice": 0.1,
        "SpotPrice": 0.02, "Savings": 80.0, "IF": 3.0, "DesiredCount": count, "AvailabilityZone": zone,
        "Score": 3, "Time": "2026-11-28 10:20:00", "T2": t2, "T3": t3,
    }  # fmt: skip


def state(series: list[dict], workloads: list[list], listed: list[str] | None = None) -> object:
    """A state whose markets are the series' (tier, type, region), or only the sizes in `listed`."""
    markets = {(r["InstanceTier"], r["InstanceType"], r["Region"]) for r in series}
    if listed is not None:
        markets = {m for m in markets if m[1] in listed}
    return make_state(
        pd.DataFrame(series),
        pd.DataFrame(workloads, columns=WORKLOAD_COLUMNS),
        pd.DataFrame([[*m, "eastus", 0.1, 0.02, 80.0, 3.0] for m in sorted(markets)], columns=MARKET_COLUMNS),
    )


def test_latest_has_one_row_per_workload_at_the_smallest_count_with_current_t2_t3():
    s = state(
        [row("D2s_v3", "1", 1, 1, 1), row("D2s_v3", "1", 10, 10, 10), row("E2s_v3", "2", 5, 5, 0)],
        [["Standard", "D2s_v3", "US East", "1", 25, 20], ["Standard", "E2s_v3", "US East", "2", 5, 0]],
    )
    frame = latest_frame(s)
    assert list(frame.columns) == ROW_COLUMNS
    got = {(r.InstanceType, r.DesiredCount, r.T2, r.T3) for r in frame.itertuples()}
    # count 1 wins for D2s_v3 (with the workload's current T2/T3); E2s_v3 was asked only at 5 so far
    assert got == {("D2s_v3", 1, 25, 20), ("E2s_v3", 5, 5, 0)}


def test_latest_leaves_out_sizes_no_longer_listed():
    s = state([row("D2s_v3", "1", 1), row("E2s_v3", "1", 1)], [], listed=["D2s_v3"])
    assert list(latest_frame(s)["InstanceType"]) == ["D2s_v3"]


def test_latest_json_records_are_numbered_with_the_site_fields():
    s = state([row("D2s_v3", "1", 1), row("D2s_v3", "2", 1)], [])
    records = json.loads(latest_json(s))
    assert [r["id"] for r in records] == [1, 2]
    assert all(list(r) == ["id", *ROW_COLUMNS] for r in records)
    assert all(isinstance(r["DesiredCount"], int) and isinstance(r["SpotPrice"], float) for r in records)


def test_csv_gz_is_byte_identical_for_identical_rows_and_parses():
    rows = pd.DataFrame([row("D2s_v3", "1", 1), row("E2s_v3", "Single", 1)])[ROW_COLUMNS]
    first, second = snapshot_csv_gz(rows), snapshot_csv_gz(rows.copy())
    assert first == second
    parsed = pd.read_csv(io.BytesIO(gzip.decompress(first)))
    assert list(parsed.columns) == ROW_COLUMNS and len(parsed) == 2


def test_selector_grows_and_never_loses_a_key():
    body, added = merge_selector(None, pd.DataFrame([row("D2s_v3", "1", 1)]))
    assert added == 1
    body, added = merge_selector(body, pd.DataFrame([row("E2s_v3", "1", 1, region="US West")]))
    assert added == 1
    body, added = merge_selector(body, pd.DataFrame([row("D2s_v3", "2", 5)]))
    assert added == 0
    assert json.loads(body) == [
        {"InstanceTier": "Standard", "InstanceType": "D2s_v3", "Region": "US East"},
        {"InstanceTier": "Standard", "InstanceType": "E2s_v3", "Region": "US West"},
    ]
