"""query_history against a simulated week of one instance type (about 60 regions x 4 zones x 11 desired
counts, changes every 10 minutes, daily checkpoints) written through HistoryTable to a moto server."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date, datetime
from typing import Any

import pandas as pd
import pytest

from benchmarks.history_query import (
    ZONES,
    OperationCounter,
    SyntheticHistory,
    public_region_names,
    synthetic_history,
    write_history,
)
from resources.history_table import HistoryTable, batch_write
from resources.query_api import reader as history_reader
from resources.query_api.reader import HistoryQueryTimeout, query_history
from resources.query_api.request import (
    MAX_REGION_DAYS,
    RECORD_FIELDS,
    OverBudgetError,
    ReadLimitError,
    ReadStats,
    TooManyPointsError,
    one_month_after,
    render_csv,
    render_json,
)
from resources.retry import Backoff
from spotlake_assets.cli import main
from spotlake_assets.core.history_items import row_items
from spotlake_assets.local.aws import local_client

AWS_REGION = "us-west-2"
TYPE = "D2s_v3"
SERIES = ["InstanceTier", "InstanceType", "Region", "AvailabilityZone", "DesiredCount"]
READ_OPERATIONS = {"Query", "GetItem", "BatchGetItem"}


def load(endpoint: str, days: float) -> tuple[str, SyntheticHistory]:
    """A fresh table holding `days` of history from 2026-11-01 00:00, about 0.5% of the series changing per
    partition, written through HistoryTable (parallel batches) with its daily checkpoints."""
    synthetic = synthetic_history(
        TYPE, datetime(2026, 11, 1), days, price_change_rate=0.0025, score_change_rate=0.025, seed=7
    )
    store = HistoryTable(
        table_name=f"azure-hist-{uuid.uuid4().hex[:8]}",
        endpoint_url=endpoint,
        region_name=AWS_REGION,
        write_workers=16,
    )
    store.ensure_table()
    write_history(store, synthetic)
    return store.table_name, synthetic


@pytest.fixture(scope="module")
def week(aws_endpoint: str) -> tuple[str, SyntheticHistory]:
    return load(aws_endpoint, 7)


@pytest.fixture(scope="module")
def day(aws_endpoint: str) -> tuple[str, SyntheticHistory]:
    """One day, for the queries that read every region: moto sorts the whole table for every Query, so a
    table of a week makes each of their ~160 calls slow (real DynamoDB reads only the asked partition)."""
    return load(aws_endpoint, 1)


@pytest.fixture
def client(aws_endpoint: str) -> Any:
    return local_client("dynamodb", aws_endpoint, AWS_REGION)


def expected(points: pd.DataFrame, first: str, last: str, region: str = "*", zone: str = "*") -> pd.DataFrame:
    """What the query must return, from the generated history: the last point before `first` of every
    matching series, then the points in [first, last]."""
    chosen = points[
        ((points["Region"] == region) | (region == "*"))
        & ((points["AvailabilityZone"] == zone) | (zone == "*"))
    ]
    as_of = chosen[chosen["Time"] < first].groupby(SERIES, sort=False).tail(1)
    in_range = chosen[(chosen["Time"] >= first) & (chosen["Time"] <= last)]
    return canonical(pd.concat([as_of, in_range]))


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    columns = [f for f in RECORD_FIELDS if f != "id"]
    text = ["InstanceTier", "InstanceType", "Region", "AvailabilityZone", "Time"]
    frame = frame[columns].astype(
        {**dict.fromkeys(text, "str"), **dict.fromkeys(["DesiredCount", "Score", "T2", "T3"], "int64")}
    )
    return frame.sort_values(["Time", *SERIES]).reset_index(drop=True)


def as_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    assert [r["id"] for r in records] == list(range(1, len(records) + 1))
    assert all(list(r) == RECORD_FIELDS for r in records)
    return canonical(pd.DataFrame(records))


def test_one_region_and_zone_returns_its_points_and_each_series_as_of_start(week, client):
    table, synthetic = week
    first, last = "2026-11-04 12:00:00", "2026-11-04 15:00:00"
    records = query_history(
        client, table_name=table, instance_type="d2s_V3", region="US East", availability_zone="2",
        start=first, end=last,
    )  # fmt: skip

    got = as_frame(records)
    pd.testing.assert_frame_equal(got, expected(synthetic.points, first, last, "US East", "2"))
    assert set(got["Region"]) == {"US East"} and set(got["AvailabilityZone"]) == {"2"}
    # every one of the zone's 11 series has a value as of start, with the real time of its last change
    as_of = got[got["Time"] < first]
    assert len(as_of) == 11 and as_of["DesiredCount"].is_unique
    unchanged = set(as_of["DesiredCount"]) - set(got.loc[got["Time"] >= first, "DesiredCount"])
    assert unchanged, "the week should hold a series that did not change in these three hours"
    assert as_of["Time"].min() < "2026-11-04 00:00:00"  # found through the day's checkpoint, not the range


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (
            "2026-11-03 00:00:00",
            "2026-11-03 00:30:00",
        ),  # a checkpoint at start holds start: use the day before
        ("2026-11-01 00:00:00", "2026-11-01 00:20:00"),  # no checkpoint before start, nothing before start
        ("2026-11-05 23:55:00", "2026-11-06 00:05:00"),  # across midnight
    ],
)
def test_as_of_start_at_checkpoint_edges(week, client, first, last):
    table, synthetic = week
    records = query_history(
        client, table_name=table, instance_type=TYPE, region="KR Central", start=first, end=last
    )
    pd.testing.assert_frame_equal(as_frame(records), expected(synthetic.points, first, last, "KR Central"))


def test_all_regions_send_only_queries_and_match_the_history(day, client):
    zone = "Single"
    table, synthetic = day
    counter = OperationCounter(client)
    first, last = "2026-11-01 12:00:00", "2026-11-01 13:00:00"

    records = query_history(
        client,
        table_name=table,
        instance_type=TYPE,
        region="*",
        availability_zone=zone,
        start=first,
        end=last,
    )

    assert set(counter.calls) <= READ_OPERATIONS and "Query" in counter.calls
    got = as_frame(records)
    pd.testing.assert_frame_equal(got, expected(synthetic.points, first, last, zone=zone))
    assert set(got["Region"]) == set(public_region_names())
    assert set(got["AvailabilityZone"]) == (set(ZONES) if zone == "*" else {zone})


@pytest.mark.parametrize("zone", ["*", "2"])
def test_too_many_points_stops_reading_at_the_cap(day, client, zone):
    table, synthetic = day
    counter = OperationCounter(client)
    stats = ReadStats()
    with pytest.raises(TooManyPointsError) as refused:
        # max_points as the web site may send it, a string; the default cap (20,000) is the benchmark's case
        query_history(
            client, table_name=table, instance_type=TYPE, availability_zone=zone, start="2026-11-01",
            end="2026-11-01", max_points="100", stats=stats,
        )  # fmt: skip
    message = str(refused.value)
    # points, not items (a point item holds every series of its market at its Time), of the asked zone
    matching = synthetic.points[(synthetic.points["AvailabilityZone"] == zone) | (zone == "*")]
    assert len(matching) > 4 * 100
    assert refused.value.limit == 100 and 100 < refused.value.count < len(matching)
    assert "more than 100 points match" in message
    assert "narrow the time range or pick one region or zone" in message
    assert set(counter.calls) <= READ_OPERATIONS
    # reading stopped: a full read is the index plus two or more Queries for each of the 54 regions
    regions = len(public_region_names())
    assert counter.calls.count("GetItem") == 1 and counter.calls.count("Query") < regions
    assert stats.calls == len(counter.calls) and stats.read_units >= 0.5 * stats.calls


def test_a_request_over_the_budget_is_refused_after_one_small_read(day, client):
    """All 54 regions over two days are 54 x 3 = 162 region-days, more than 128: one GetItem (the regions
    index, half a read unit), then the refusal, which says what fits."""
    table, _ = day
    counter = OperationCounter(client)
    stats = ReadStats()
    with pytest.raises(OverBudgetError) as refused:
        query_history(client, table_name=table, instance_type=TYPE, start="2026-11-01", end="2026-11-02", stats=stats)
    assert counter.calls == ["GetItem"] and stats.calls == 1 and stats.read_units == 0.5
    assert (refused.value.region_days, refused.value.limit) == (162, MAX_REGION_DAYS)
    assert str(refused.value) == (
        "the request reads 54 regions x (2 days + 1) = 162 region-days, more than the 128 one request may read; "
        "pick one region (a whole month is 33 region-days) or at most 1 day for all 54 regions"
    )
    # what the message proposes fits: one region over the longest month the site allows, all regions for a day
    month = query_history(client, table_name=table, instance_type=TYPE, region="US East", start="2027-01-31",
                          end="2027-03-03")  # fmt: skip
    assert month and {r["Time"] < "2027-01-31" for r in month} == {True}  # the values as of start only
    assert query_history(client, table_name=table, instance_type=TYPE, start="2026-11-01", end="2026-11-01")


def test_data_denser_than_the_budget_stops_reading(week, client, monkeypatch):
    """The read units of a region-day bound what one request reads even when the data is denser than that
    bound assumes: here the bound is made tiny, and reading stops before the next request past it."""
    table, _ = week
    monkeypatch.setattr(history_reader, "READ_UNITS_PER_REGION_DAY", 0.01)
    counter = OperationCounter(client)
    stats = ReadStats()
    with pytest.raises(ReadLimitError, match=r"more data than one request may read \(\d+(\.5)? read units, at most"):
        query_history(client, table_name=table, instance_type=TYPE, region="US East", start="2026-11-02",
                      end="2026-11-05", stats=stats)  # fmt: skip
    assert counter.calls == ["Query"] and stats.calls == 1  # the first page read, nothing after it


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (dict(start="2026-11-01", end="2026-12-02"), "longer than one month: with Start 2026-11-01, End may be at"),
        (dict(start="2027-01-31", end="2027-03-04"), "End may be at most 2027-03-03"),
        (dict(start="2026-11-05", end="2026-11-04 23:00:00"), "is before Start"),
        (dict(instance_type=" ", start="2026-11-01", end="2026-11-02"), "InstanceType is required"),
        (dict(instance_type="*", start="2026-11-01", end="2026-11-02"), "must be one instance type"),
        (dict(start="2026-11-31", end="2026-12-01"), "Start '2026-11-31' is not a date"),
        (dict(start="2026-11-01", end="2026-11-02", max_points="many"), "max_points 'many'"),
        (dict(start="2026-11-01", end="9999-12-31T23:59:59-23:59"), "End '9999-12-31T23:59:59-23:59' is out of range"),
        (dict(start="1999-12-31", end="2000-01-01"), "Start 1999-12-31 00:00:00 is out of range: dates are from"),
        (dict(start="2026-11-01", end="2100-01-01"), "End 2100-01-01 23:59:59 is out of range"),
        (dict(region="x" * 60_000, start="2026-11-01", end="2026-11-02"), "^Region is 60000 characters long; at most"),
        (dict(instance_type="D" * 65, start="2026-11-01", end="2026-11-02"), "^InstanceType is 65 characters long"),
        (dict(availability_zone="1" * 17, start="2026-11-01", end="2026-11-02"), "^AvailabilityZone is 17 characters"),
        (dict(instance_tier="t" * 33, start="2026-11-01", end="2026-11-02"), "^InstanceTier is 33 characters"),
        (dict(start="2026-11-01" + " " * 40, end="2026-11-02"), "^Start is 50 characters long; at most 32"),
    ],
)
def test_bad_requests_are_refused_before_any_request(client, request_, message):
    counter = OperationCounter(client)
    with pytest.raises(ValueError, match=message):
        query_history(client, table_name="unused", **{"instance_type": TYPE, **request_})
    assert counter.calls == []


def test_a_whole_month_is_allowed_and_an_unknown_type_has_no_history(week, client):
    table, _ = week
    for start, end in [("2026-11-01", "2026-12-01"), ("2026-12-01", "2027-01-01"), ("2027-01-31", "2027-03-03")]:
        assert query_history(client, table_name=table, instance_type="E64s_v5", start=start, end=end) == []


@pytest.mark.parametrize(
    ("day", "month_later"),
    [("2026-11-01", "2026-12-01"), ("2026-12-31", "2027-01-31"), ("2027-01-31", "2027-03-03"),
     ("2028-01-30", "2028-03-01"), ("2026-03-31", "2026-05-01"), ("2026-02-28", "2026-03-28")],
)  # fmt: skip
def test_one_month_is_the_web_site_date_pickers_month(day, month_later):
    """new Date(day).setMonth(getMonth() + 1) in the site's query form, overflow included (2028 is a leap year)."""
    assert one_month_after(date.fromisoformat(day)) == date.fromisoformat(month_later)


def test_tier_filter_keeps_only_that_tier(week, client):
    table, synthetic = week
    request = dict(table_name=table, instance_type=TYPE, region="US East", availability_zone="1",
                   start="2026-11-02 10:00:00", end="2026-11-02 12:00:00")  # fmt: skip
    everything = query_history(client, **request)
    assert everything and {r["InstanceTier"] for r in everything} == {"Standard"}
    assert query_history(client, instance_tier="standard", **request) == everything  # case-insensitive
    assert query_history(client, instance_tier="*", **request) == everything
    assert query_history(client, instance_tier="Basic", **request) == []


def test_a_query_that_runs_out_of_time_stops_before_its_next_request(week, client):
    table, _ = week
    counter = OperationCounter(client)
    with pytest.raises(HistoryQueryTimeout, match="ran out of time"):
        query_history(client, table_name=table, instance_type=TYPE, start="2026-11-01", end="2026-11-02", timeout=0)
    assert counter.calls == []


def test_command_line_prints_json_and_csv(week, aws_endpoint, capsys):
    """`spotlake history` (spotlake_assets/cli.py), in-process; tests/test_cli.py runs the installed command."""
    table, synthetic = week
    argv = ["history", "--instance-type", TYPE, "--region", "US West 2", "--zone", "1",
            "--start", "2026-11-02 10:00:00", "--end", "2026-11-02 12:00:00", "--table", table,
            "--endpoint-url", aws_endpoint]  # fmt: skip

    assert main([*argv, "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["Status"] == 200
    want = expected(synthetic.points, "2026-11-02 10:00:00", "2026-11-02 12:00:00", "US West 2", "1")
    pd.testing.assert_frame_equal(as_frame(body["Data"]), want)

    assert main([*argv, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(want) and list(rows[0]) == RECORD_FIELDS

    assert main([*argv, "--start", "2026-10-01", "--format", "csv"]) == 2  # the last --start wins
    err = capsys.readouterr().err
    assert "longer than one month" in err and err.count("\n") == 1


def test_renderers_keep_the_fields_and_numbers():
    record = dict(zip(RECORD_FIELDS, [1, "Standard", TYPE, "US East", "1", 0.096, 0.1, 80.0, -1.0, 3, 5, 5, 1,
                                      "2026-11-01 00:10:00"], strict=True))  # fmt: skip
    assert json.loads(render_json([record])) == {"Status": 200, "Data": [record]}
    assert render_csv([record]).splitlines() == [
        ",".join(RECORD_FIELDS),
        "1,Standard,D2s_v3,US East,1,0.096,0.1,80.0,-1.0,3,5,5,1,2026-11-01 00:10:00",
    ]


# ---- both item shapes: single points (written until issue 11) and point items (one per market and Time) ---------


def write_single_points(store: HistoryTable, rows: pd.DataFrame) -> None:
    """What HistoryTable.write_points wrote before issue 11: one item per row (row_items), its regions first."""
    store.register_regions(zip(rows["InstanceType"], rows["Region"], strict=True))
    requests = [{"PutRequest": {"Item": item}} for item in row_items(rows)]
    for i in range(0, len(requests), 25):
        batch_write(store.client, store.table_name, requests[i : i + 25], max_rounds=8, backoff=Backoff(0.01, 0.1))


@pytest.fixture(scope="module")
def shapes(aws_endpoint: str) -> tuple[dict[str, str], SyntheticHistory]:
    """Three tables of the same two days of three regions: every point single ("old"), every point in point items
    ("new"), and single points before 2026-11-02 06:00 with point items from then on ("mixed", a table whose
    writer switched shape at that partition). Checkpoints as HistoryTable writes them, in all three."""
    regions = ["US East", "KR Central", "West Europe"]
    synthetic = synthetic_history(TYPE, datetime(2026, 11, 1), 2, regions=regions, price_change_rate=0.02,
                                  score_change_rate=0.05, seed=3)  # fmt: skip
    switch = "2026-11-02 06:00:00"
    points = synthetic.points
    tables = {}
    for shape in ("old", "new", "mixed"):
        store = HistoryTable(
            table_name=f"azure-{shape}-{uuid.uuid4().hex[:8]}", endpoint_url=aws_endpoint, region_name=AWS_REGION
        )
        store.ensure_table()
        single = {"old": points, "new": points.iloc[:0], "mixed": points[points["Time"] < switch]}[shape]
        if len(single):
            write_single_points(store, single)
        if len(single) < len(points):
            store.write_rows(points.drop(index=single.index))
        for as_of, state in synthetic.checkpoints.items():
            store.write_checkpoint(state, as_of)
        tables[shape] = store.table_name
    return tables, synthetic


def item_shapes(client: Any, table: str) -> set[str]:
    items = [i for page in client.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
    return {"grouped" if "series" in i else "single" for i in items if not i["sk"]["S"].startswith("~")}


@pytest.mark.parametrize(
    "request_",
    [
        dict(region="US East", start="2026-11-02 05:00:00", end="2026-11-02 07:00:00"),  # across the switch
        dict(region="KR Central", availability_zone="2", start="2026-11-02 05:30:00", end="2026-11-02 09:00:00"),
        dict(region="*", availability_zone="Single", start="2026-11-01 22:00:00", end="2026-11-02 08:00:00"),
        dict(region="*", start="2026-11-02 06:00:00", end="2026-11-02 06:40:00"),  # as of start: single points
        dict(region="West Europe", instance_tier="standard", start="2026-11-01", end="2026-11-03"),
    ],
)
def test_a_table_of_both_item_shapes_answers_as_one_of_either_shape(shapes, client, request_):
    tables, synthetic = shapes
    assert [item_shapes(client, tables[s]) for s in ("old", "new", "mixed")] == [
        {"single"}, {"grouped"}, {"single", "grouped"}
    ]  # fmt: skip
    answers, calls = {}, {}
    counter = OperationCounter(client)
    for shape, table in tables.items():
        counter.calls.clear()
        answers[shape] = query_history(client, table_name=table, instance_type=TYPE, **request_)
        calls[shape] = sorted(counter.calls)  # threads (regions) may send in any order
    assert answers["old"] == answers["new"] == answers["mixed"]  # the same records, ids included
    assert calls["old"] == calls["new"] == calls["mixed"]  # and the same requests
    start, end = request_["start"], request_["end"]
    first, last = (f"{start} 00:00:00" if len(start) == 10 else start, f"{end} 23:59:59" if len(end) == 10 else end)
    want = expected(synthetic.points, first, last, request_["region"], request_.get("availability_zone", "*"))
    pd.testing.assert_frame_equal(as_frame(answers["mixed"]), want)


def test_the_point_cap_counts_points_in_either_shape(shapes, client):
    tables, synthetic = shapes
    request = dict(instance_type=TYPE, region="*", availability_zone="1", start="2026-11-01", end="2026-11-03")
    matching = synthetic.points[synthetic.points["AvailabilityZone"] == "1"]
    for table in tables.values():
        with pytest.raises(TooManyPointsError) as refused:
            query_history(client, table_name=table, max_points=50, max_region_days=None, **request)
        # points, not items (a point item holds several); each region is one page here, all read at once
        assert 50 < refused.value.count <= len(matching)
