"""The DynamoDB item-size rules the history cost benchmark prices with (benchmarks/history_cost.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from benchmarks.history_cost import (
    S3_STORAGE_USD_PER_GB_MONTH,
    STORAGE_USD_PER_GB_MONTH,
    WRITE_USD_PER_MILLION,
    Monthly,
    compact,
    mean_hold_days,
    project_month,
    recorded,
    single_points,
    with_ttl,
    write_units,
)
from spotlake_assets.core.item_size import item_size, number_size


def test_item_size_follows_dynamodb_rules():
    # names + values: strings by UTF-8 bytes, numbers 1 byte per 2 significant digits + 1
    assert item_size({"id": {"S": "abc1231"}, "expiresAt": {"N": "2099"}}) == 2 + 7 + 9 + 3
    assert [number_size(n) for n in ("0", "-1", "0.02", "123.4500", "1E+3", "0.123456")] == [2, 2, 2, 4, 2, 4]
    # map: 3 bytes + per element (name + value + 1); list: 3 + per element (value + 1); string set: the strings
    assert item_size({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + (1 + 2 + 1)
    assert item_size({"l": {"L": [{"N": "1"}, {"S": "é"}]}}) == 1 + 3 + (2 + 1) + (2 + 1)
    assert item_size({"r": {"SS": ["eastus", "westus"]}}) == 1 + 12
    assert [write_units(n) for n in (1, 1024, 1025)] == [1, 1, 2]


def test_point_items_are_the_ones_the_history_resource_sends_one_per_partition_key_and_time():
    row = {
        "InstanceTier": "Standard", "InstanceType": "D2s_v3", "Region": "US East", "OndemandPrice": 0.1,
        "SpotPrice": 0.02, "Savings": 80.0, "IF": 3.0, "DesiredCount": 1, "AvailabilityZone": "1", "Score": 3,
        "Time": "2026-11-28 10:20:00", "T2": 1, "T3": 1,
    }  # fmt: skip
    rows = pd.DataFrame([row, {**row, "AvailabilityZone": "2"}, {**row, "Region": "US West"}])
    client = recorded(lambda history: history.write_points(rows))
    assert len(client.puts) == 2 and len(client.updates) == 1  # one regions-index UpdateItem per type
    assert sorted((i["pk"]["S"], i["sk"]["S"], sorted(i["series"]["M"])) for i in client.puts) == [
        ("d2s_v3#us east", "2026-11-28 10:20:00", ["1#01#standard", "2#01#standard"]),
        ("d2s_v3#us west", "2026-11-28 10:20:00", ["1#01#standard"]),
    ]
    # the evaluated alternatives: one item per row (the shape before issue 11), and members as value lists
    assert sorted(i["sk"]["S"] for i in single_points(rows)) == [
        "2026-11-28 10:20:00#1#01#standard", "2026-11-28 10:20:00#1#01#standard", "2026-11-28 10:20:00#2#01#standard"
    ]  # fmt: skip
    east = next(i for i in client.puts if i["pk"]["S"] == "d2s_v3#us east")
    assert compact(east)["series"]["M"]["2#01#standard"] == {"L": [
        {"S": "Standard"}, {"S": "2"}, {"N": "0.1"}, {"N": "0.02"}, {"N": "80.0"}, {"N": "3.0"}, {"N": "3"},
        {"N": "1"}, {"N": "1"},
    ]}  # fmt: skip


def _monthly(**overrides) -> Monthly:
    values = dict(
        write_units=2.3e7, storage_bytes_per_day=2.0e9, write_units_ttl=2.3e7, storage_bytes_per_day_ttl=2.02e9,
        archive_bytes=5e9, archive_puts=27_800, archive_gets=32_000,
    )  # fmt: skip
    return Monthly(**{**values, **overrides})


def test_without_the_archive_every_month_adds_a_month_of_storage():
    m = _monthly()
    writes = m.write_units / 1e6 * WRITE_USD_PER_MILLION
    monthly_storage = m.storage_bytes_per_day * 30 / 1e9 * STORAGE_USD_PER_GB_MONTH
    for n in (1, 2, 12, 60, 120):
        assert project_month(n, m, archive=False)["total"] == pytest.approx(writes + n * monthly_storage)
    with pytest.raises(ValueError):
        project_month(0, m, archive=False)


def test_with_the_archive_dynamodb_storage_is_flat_after_the_hold_and_s3_grows_by_a_month():
    m = _monthly()
    # an item of a month is verified in S3 (day 31) before it reaches 40 days: it stays 40 days + TTL's lag
    assert mean_hold_days() == pytest.approx(40 + 2)
    assert mean_hold_days(retention=10, month_days=30, verified_after=1, delete_lag=0) == pytest.approx(
        (31 * 21 - 21**2 / 2 + 10 * 9) / 30
    )  # 31 - t for the items of t < 21, 10 days for the others
    storage = [project_month(n, m, archive=True)["dynamodb_storage"] for n in (1, 2, 12, 60, 120)]
    assert storage[0] == pytest.approx(m.storage_bytes_per_day_ttl * 30 / 1e9 * STORAGE_USD_PER_GB_MONTH)
    assert storage[1:] == pytest.approx([m.storage_bytes_per_day_ttl * 42 / 1e9 * STORAGE_USD_PER_GB_MONTH] * 4)
    s3 = [project_month(n, m, archive=True)["s3_storage"] for n in (1, 2, 3)]
    assert s3[2] - s3[1] == pytest.approx(s3[1] - s3[0]) and s3[0] == pytest.approx(5 * S3_STORAGE_USD_PER_GB_MONTH)
    assert project_month(60, m, archive=True)["total"] < project_month(60, m, archive=False)["total"] / 4


def test_the_ttl_attribute_is_the_items_time_plus_the_retention():
    point = {"pk": {"S": "a#b"}, "sk": {"S": "2026-11-28 10:20:00"}}
    as_of = "2026-11-28 00:00:00"
    checkpoint = {"pk": {"S": "a#b"}, "sk": {"S": f"~checkpoint#{as_of}"}, "AsOf": {"S": as_of}}
    epoch = datetime(2026, 11, 28, tzinfo=UTC).timestamp()
    assert with_ttl(point)["expires_at"] == {"N": str(int(epoch) + 10 * 3600 + 20 * 60 + 40 * 86400)}
    assert with_ttl(checkpoint)["expires_at"] == {"N": str(int(epoch) + 40 * 86400)}
    # the name (10 bytes) and a 10-digit number (at most 6 bytes; trailing zeros are not significant)
    assert item_size(with_ttl(point)) - item_size(point) == len("expires_at") + 5  # 1799317200: 8 digits
