"""The DynamoDB item-size rules the history cost benchmark prices with (benchmarks/history_cost.py)."""

from __future__ import annotations

import pandas as pd

from benchmarks.history_cost import compact, recorded, single_points, write_units
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
