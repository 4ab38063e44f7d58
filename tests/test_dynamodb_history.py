"""HistoryTable against a real moto server over HTTP: the point items (one per market and Time), idempotent
loads and partition re-runs, exact numbers, checkpoints, the regions index, the production-table guard, and the
UnprocessedItems retry loop."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest

from resources.history_table import HistoryTable, HistoryTableError, WriteRefusedError, batch_write
from resources.retry import Backoff
from resources.s3 import S3Store
from spotlake_assets.core import history_keys as keys
from spotlake_assets.core import layout
from spotlake_assets.core.history_items import checkpoint_items, row_items
from spotlake_assets.core.transforms.state import ROW_COLUMNS
from spotlake_assets.local.aws import local_client

AWS_REGION = "us-west-2"


def make_rows(*overrides: dict[str, Any]) -> pd.DataFrame:
    """Dataset rows: one per override dict, on top of a typical D2s_v3 row."""
    base = dict(
        InstanceTier="Standard", InstanceType="D2s_v3", Region="US East", OndemandPrice=0.096,
        SpotPrice=0.0192, Savings=80.0, IF=5.0, DesiredCount=1, AvailabilityZone="1", Score=3,
        Time="2026-11-01 00:10:00", T2=1, T3=1,
    )  # fmt: skip
    return pd.DataFrame([{**base, **o} for o in overrides])[ROW_COLUMNS]


@pytest.fixture
def store(aws_endpoint: str) -> HistoryTable:
    history = HistoryTable(
        table_name=f"azure-t-{uuid.uuid4().hex[:10]}", endpoint_url=aws_endpoint, region_name=AWS_REGION
    )
    assert history.ensure_table() is True
    return history


@pytest.fixture
def admin(aws_endpoint: str) -> Any:
    return local_client("dynamodb", aws_endpoint, AWS_REGION)


def all_items(admin: Any, table: str) -> list[dict[str, Any]]:
    items = [i for page in admin.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def point_item(admin: Any, table: str, pk: str, time: str) -> dict[str, Any]:
    return admin.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": time}})["Item"]


def test_rewriting_rows_writes_the_same_items(store, admin):
    rows = make_rows({}, {"AvailabilityZone": "2", "DesiredCount": 5}, {"Region": "US West 2", "SpotPrice": 0.02})
    assert store.write_rows(rows) == 2  # one item per market and Time: US East's two points share one
    first = all_items(admin, store.table_name)
    assert store.count_items() == 3  # 2 point items + the type's regions index item

    assert store.write_rows(rows) == 2
    # other spellings of the same series are the same keys: a re-import cannot duplicate them
    assert store.write_rows(rows.assign(InstanceType="d2s_v3 ", Region=rows["Region"].str.upper())) == 2
    store.write_rows(rows)
    assert store.count_items() == 3
    assert all_items(admin, store.table_name) == first
    assert store.ensure_table() is False


def test_a_point_item_holds_its_markets_series_at_that_time_as_checkpoint_members_do(store, admin):
    rows = make_rows({}, {"AvailabilityZone": "2", "DesiredCount": 5, "SpotPrice": 0.03},
                     {"Time": "2026-11-01 00:20:00"})  # fmt: skip
    assert store.write_points(rows) == [("d2s_v3#us east", "2026-11-01 00:10:00"),
                                        ("d2s_v3#us east", "2026-11-01 00:20:00")]  # fmt: skip
    item = point_item(admin, store.table_name, "d2s_v3#us east", "2026-11-01 00:10:00")
    # no zk, no Time: the sort key is the Time; `expires_at`: TTL may delete it 40 days later (once archived)
    assert set(item) == {"pk", "sk", "InstanceType", "Region", "series", "expires_at"}
    assert int(item["expires_at"]["N"]) == int(datetime(2026, 12, 11, 0, 10, tzinfo=UTC).timestamp())
    assert (item["InstanceType"], item["Region"]) == ({"S": "D2s_v3"}, {"S": "US East"})
    members = item["series"]["M"]
    assert sorted(members) == ["1#01#standard", "2#05#standard"]
    # a member is the checkpoint's member of the same row (one encoder) without what the item states once
    [checkpoint] = checkpoint_items(rows.iloc[[1]], "2026-11-01 00:10:00")
    full = checkpoint["series"]["M"]["2#05#standard"]["M"]
    assert members["2#05#standard"]["M"] == {
        name: value for name, value in full.items() if name not in ("zk", "Time", "InstanceType", "Region")
    }
    assert set(members["1#01#standard"]["M"]) == {"InstanceTier", "AvailabilityZone", "DesiredCount", "OndemandPrice",
                                                  "SpotPrice", "Savings", "IF", "Score", "T2", "T3"}  # fmt: skip


def test_a_series_spelling_its_market_otherwise_keeps_its_own_spelling(store, admin):
    rows = make_rows({}, {"AvailabilityZone": "2", "InstanceType": "d2s_V3", "Region": "us east"})
    store.write_rows(rows)
    members = point_item(admin, store.table_name, "d2s_v3#us east", "2026-11-01 00:10:00")["series"]["M"]
    assert "InstanceType" not in members["1#01#standard"]["M"]
    assert (members["2#01#standard"]["M"]["InstanceType"], members["2#01#standard"]["M"]["Region"]) == (
        {"S": "d2s_V3"},
        {"S": "us east"},
    )


def test_numbers_are_exact_decimals_and_missing_values_take_the_dataset_fill(store, admin):
    rows = make_rows(
        {
            "SpotPrice": 0.1,
            "OndemandPrice": 0.333333,
            "Savings": 69.99,
            "IF": math.nan,
            "T2": None,
            "Score": 2,
        },
        {"AvailabilityZone": None, "Score": None, "DesiredCount": 10, "T3": pd.NA},
    )
    store.write_rows(rows)
    items = point_item(admin, store.table_name, "d2s_v3#us east", "2026-11-01 00:10:00")["series"]["M"]
    point = items["1#01#standard"]["M"]
    assert {c: point[c] for c in ("SpotPrice", "OndemandPrice", "Savings", "IF", "T2", "Score", "DesiredCount")} == {
        "SpotPrice": {"N": "0.1"},
        "OndemandPrice": {"N": "0.333333"},
        "Savings": {"N": "69.99"},
        "IF": {"N": "-1"},
        "T2": {"N": "0"},
        "Score": {"N": "2"},
        "DesiredCount": {"N": "1"},
    }
    missing_zone = items["n/a#10#standard"]["M"]
    assert missing_zone["AvailabilityZone"] == {"S": "N/A"}
    assert (missing_zone["Score"], missing_zone["T3"]) == ({"N": "-1"}, {"N": "0"})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"SpotPrice": math.inf}, "SpotPrice"),
        ({"Score": 2.5}, "Score"),
        ({"Time": "2026-11-01 0:10:00"}, "YYYY-MM-DD HH:MM:SS"),
        ({"Region": "US#East"}, "Region"),
    ],
)
def test_bad_values_are_refused_before_any_write(store, override, message):
    with pytest.raises(ValueError, match=message):
        store.write_rows(make_rows({}, override))
    assert store.count_items() == 0


def test_two_rows_of_one_series_and_time_are_refused(store):
    with pytest.raises(ValueError, match="share the DynamoDB key"):
        store.write_rows(make_rows({}, {"SpotPrice": 0.5}))
    with pytest.raises(ValueError, match=r"lack columns \['T3'\]"):
        store.write_rows(make_rows({}).drop(columns="T3"))


def manifest(store: S3Store, partition: str) -> list[list[str]]:
    return json.loads(store.get(layout.history_manifest_key(partition)))


def test_a_partition_rerun_writes_the_same_items_and_with_other_data_leaves_no_stale_point(store, admin, make_store):
    s3, partition, at = make_store(), "2026-11-01-00:00", "2026-11-01 00:10:00"
    rows = make_rows({}, {"AvailabilityZone": "2"}, {"AvailabilityZone": "3"}, {"Region": "US West 2"})
    assert store.load_partition(s3, partition, rows) == (4, 0, 0)  # points written, stale items deleted, checkpoints
    first = all_items(admin, store.table_name)
    assert manifest(s3, partition) == [["d2s_v3#us east", at], ["d2s_v3#us west 2", at]]
    assert store.load_partition(s3, partition, rows) == (4, 0, 0)  # a retry: the same items
    assert all_items(admin, store.table_name) == first

    # the re-run has zone 1 changed, zone 3 and US West 2 gone: the item is rewritten whole, the other deleted
    again = make_rows({"SpotPrice": 0.5}, {"AvailabilityZone": "2"})
    assert store.load_partition(s3, partition, again) == (2, 1, 0)
    [item] = [i for i in all_items(admin, store.table_name) if not i["sk"]["S"].startswith("~")]
    assert (item["pk"]["S"], item["sk"]["S"]) == ("d2s_v3#us east", at)
    assert sorted(item["series"]["M"]) == ["1#01#standard", "2#01#standard"]
    assert item["series"]["M"]["1#01#standard"]["M"]["SpotPrice"] == {"N": "0.5"}
    assert manifest(s3, partition) == [["d2s_v3#us east", at]]


def test_a_rerun_of_a_partition_written_as_single_points_replaces_them_with_point_items(store, admin, make_store):
    """The migration: a partition loaded before issue 11 (one item per point, listed in its manifest) is loaded
    again; its single points are deleted, so the table converges to the grouped items."""
    s3, partition, at = make_store(), "2026-11-01-00:00", "2026-11-01 00:10:00"
    rows = make_rows({}, {"AvailabilityZone": "2"})
    singles = row_items(rows)
    batch_write(admin, store.table_name, [{"PutRequest": {"Item": i}} for i in singles], max_rounds=1,
                backoff=Backoff(0, 0))  # fmt: skip
    s3.put(layout.history_manifest_key(partition), json.dumps([[i["pk"]["S"], i["sk"]["S"]] for i in singles]).encode())
    assert [i["sk"]["S"] for i in all_items(admin, store.table_name)] == [f"{at}#1#01#standard", f"{at}#2#01#standard"]

    assert store.load_partition(s3, partition, rows) == (2, 2, 0)
    points = [i for i in all_items(admin, store.table_name) if i["pk"]["S"] == "d2s_v3#us east"]
    assert [(i["sk"]["S"], sorted(i["series"]["M"])) for i in points] == [(at, ["1#01#standard", "2#01#standard"])]
    assert manifest(s3, partition) == [["d2s_v3#us east", at]]


def test_checkpoint_holds_each_series_last_row_once_per_pk(store, admin):
    state = make_rows(
        {"Time": "2026-11-01 23:50:00"},
        {"AvailabilityZone": "Single", "DesiredCount": 50, "Time": "2026-11-01 03:00:00", "SpotPrice": 0.07},
        {"Region": "Korea Central"},
    )
    assert store.write_checkpoint(state, date(2026, 11, 2)) == 2
    assert store.write_checkpoint(state, "2026-11-02 00:00:00") == 2  # the same item again
    items = all_items(admin, store.table_name)
    assert len(items) == 3  # two checkpoints + the regions index
    checkpoint = next(i for i in items if i["pk"]["S"] == "d2s_v3#us east")
    assert checkpoint["sk"]["S"] == "~checkpoint#2026-11-02 00:00:00"
    members = checkpoint["series"]["M"]
    assert sorted(members) == ["1#01#standard", "single#50#standard"]
    assert members["single#50#standard"]["M"]["SpotPrice"] == {"N": "0.07"}
    assert members["single#50#standard"]["M"]["Time"] == {"S": "2026-11-01 03:00:00"}
    index = next(i for i in items if i["pk"]["S"] == "d2s_v3#__regions__")
    assert sorted(index[keys.REGIONS_ATTRIBUTE]["SS"]) == ["korea central", "us east"]

    with pytest.raises(ValueError, match="the state must end there"):
        store.write_checkpoint(make_rows({"Time": "2026-11-02 00:10:00"}), "2026-11-02 00:00:00")


def test_regions_index_grows_with_add_and_skips_known_pairs(store, admin):
    assert store.register_regions([("D2s_v3", "US East"), ("d2s_v3", "us east"), ("D4s_v3", "US East")]) == 2
    assert store.register_regions([("D2s_v3", "US East")]) == 0  # known to this process: no request
    # another process (a fresh resource) adds a region: ADD merges, nothing is lost
    other = HistoryTable(table_name=store.table_name, endpoint_url=store.endpoint_url, region_name=AWS_REGION)
    assert other.register_regions([("D2s_v3", "US West")]) == 1
    key = {name: {"S": value} for name, value in keys.regions_index_key("D2s_v3").items()}
    item = admin.get_item(TableName=store.table_name, Key=key)["Item"]
    assert sorted(item[keys.REGIONS_ATTRIBUTE]["SS"]) == ["us east", "us west"]


def test_production_table_is_refused_outside_prod_before_any_request():
    # a closed port: a request, had one been sent, would fail with a connection error instead
    refused = HistoryTable(table_name="azure", env="test", endpoint_url="http://127.0.0.1:9")
    for call in (refused.ensure_table, lambda: refused.write_rows(make_rows({})), refused.count_items):
        with pytest.raises(WriteRefusedError, match="production table 'azure' in environment 'test'"):
            call()
    assert refused._client is None
    assert HistoryTable(table_name="azure", env="prod", endpoint_url="http://127.0.0.1:9").client is not None
    assert HistoryTable(table_name="azure-test", env="test", endpoint_url="http://127.0.0.1:9").client


def test_a_failed_request_names_the_table(aws_endpoint):
    missing = HistoryTable(table_name="no-such-table", endpoint_url=aws_endpoint, region_name=AWS_REGION)
    with pytest.raises(HistoryTableError, match="'no-such-table'.*ResourceNotFoundException"):
        missing.write_rows(make_rows({}))


class WithholdingClient:
    """Passes BatchWriteItem to a real client but, for its first `rounds` calls, sends only the first half of
    the requests and answers the rest as UnprocessedItems, as a throttled DynamoDB does."""

    def __init__(self, real: Any, rounds: int) -> None:
        self.real = real
        self.rounds = rounds
        self.sizes: list[int] = []

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:  # noqa: N803 - boto3 name
        ((table, requests),) = RequestItems.items()
        self.sizes.append(len(requests))
        sent = requests if len(self.sizes) > self.rounds else requests[: len(requests) // 2]
        if sent:
            self.real.batch_write_item(RequestItems={table: sent})
        left = requests[len(sent) :]
        return {"UnprocessedItems": {table: left} if left else {}}


def test_unprocessed_items_are_retried_with_growing_jittered_backoff(store, admin):
    rows = make_rows(*({"DesiredCount": n} for n in range(1, 26)))
    requests = [{"PutRequest": {"Item": item}} for item in row_items(rows)]
    client = WithholdingClient(admin, rounds=3)
    sleeps: list[float] = []

    backoff = Backoff(base_seconds=0.1, max_seconds=0.3)
    batch_write(client, store.table_name, requests, max_rounds=5, backoff=backoff, sleep=sleeps.append)

    assert client.sizes == [25, 13, 7, 4]  # each round resends only what was left
    assert len(sleeps) == 3
    for sleep, ceiling in zip(sleeps, (0.1, 0.2, 0.3), strict=True):  # doubling, capped, full jitter in [0, c]
        assert 0 <= sleep <= ceiling
    assert store.count_items() == 25


def test_unprocessed_items_left_after_the_last_round_are_a_clear_error(store, admin):
    requests = [{"PutRequest": {"Item": item}} for item in row_items(make_rows({}, {"DesiredCount": 5}))]
    client = WithholdingClient(admin, rounds=99)
    with pytest.raises(HistoryTableError, match=rf"table '{store.table_name}': 1 of 2 items still unprocessed"):
        batch_write(client, store.table_name, requests, max_rounds=3, backoff=Backoff(0, 0), sleep=lambda s: None)
    assert client.sizes == [2, 1, 1]
