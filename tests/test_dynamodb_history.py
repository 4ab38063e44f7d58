"""HistoryTable against a real moto server over HTTP: idempotent loads, exact numbers, checkpoints, the
regions index, the production-table guard, and the UnprocessedItems retry loop."""

from __future__ import annotations

import math
import uuid
from datetime import date
from typing import Any

import pandas as pd
import pytest

from resources.history_table import (
    HistoryTable,
    HistoryTableError,
    WriteRefusedError,
    batch_write,
    row_items,
)
from resources.retry import Backoff
from spotlake_assets.core import history_keys as keys
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


def test_rewriting_rows_writes_the_same_items(store, admin):
    rows = make_rows({}, {"AvailabilityZone": "2", "DesiredCount": 5}, {"Region": "US West 2", "SpotPrice": 0.02})
    assert store.write_rows(rows) == 3
    first = all_items(admin, store.table_name)
    assert store.count_items() == 4  # 3 points + the type's regions index item

    assert store.write_rows(rows) == 3
    # other spellings of the same series are the same keys: a re-import cannot duplicate them
    assert store.write_rows(rows.assign(InstanceType="d2s_v3 ", Region=rows["Region"].str.upper())) == 3
    store.write_rows(rows)
    assert store.count_items() == 4
    assert all_items(admin, store.table_name) == first
    assert store.ensure_table() is False


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
    items = {i["sk"]["S"]: i for i in all_items(admin, store.table_name) if i["pk"]["S"] == "d2s_v3#us east"}
    point = items["2026-11-01 00:10:00#1#01#standard"]
    assert {c: point[c] for c in ("SpotPrice", "OndemandPrice", "Savings", "IF", "T2", "Score", "DesiredCount")} == {
        "SpotPrice": {"N": "0.1"},
        "OndemandPrice": {"N": "0.333333"},
        "Savings": {"N": "69.99"},
        "IF": {"N": "-1"},
        "T2": {"N": "0"},
        "Score": {"N": "2"},
        "DesiredCount": {"N": "1"},
    }
    missing_zone = items["2026-11-01 00:10:00#n/a#10#standard"]
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
