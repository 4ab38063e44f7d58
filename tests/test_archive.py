"""The monthly archive over the local stack (moto's server, the Azure emulator, a Dagster instance): archive a month,
let TTL expire what is archived, and answer the same queries as before; an item never expires while its month's
archive is missing or wrong; DuckDB reads exactly the month's stored changes from the archive's files.

History: from 2026-09-29 23:40, partitions at the end of September (with a day-long gap: lost partitions), the start
of October, and two on 2026-11-09. At 2026-11-09 23:55 September's items are past their retention and October's
first ones are not; both months are due for the guard's check (their first items expire within 2 days).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import duckdb
import pandas as pd
import pytest
import requests
from dagster import AssetKey, DagsterInstance, materialize

from resources.archive import MonthArchive
from resources.archive_expiry import ExpiryGuard
from resources.clock import Clock
from resources.query_api.archive import ArchiveSource
from resources.query_api.reader import answer_history
from spotlake_assets.core import archive, names
from spotlake_assets.core import archive_keys as ak
from spotlake_assets.local.aws import LOCAL_AWS_CREDENTIALS
from spotlake_assets.local.run import run_partitions
from spotlake_assets.local.ttl import expire_as_ttl_would

from .stack import graph, load_frame, metadata, s3_client, start, table_items, use_stack

HISTORY_START = "2026-09-29-23:40"
SEPTEMBER = ["2026-09-29-23:40", "2026-09-29-23:50", "2026-09-30-00:00", "2026-09-30-23:40"]  # 23:50 .. 23:50
OCTOBER = ["2026-09-30-23:50", "2026-10-01-00:00", "2026-10-01-00:10"]  # data times 12-01 00:00 .. 00:20
NOVEMBER = ["2026-11-09-21:50", "2026-11-09-22:00"]
NOW = datetime(2026, 11, 9, 23, 55, tzinfo=UTC)


@pytest.fixture(scope="module")
def history():
    with start(seed=23, extra_env={"SPOTLAKE_PARTITION_START": HISTORY_START}) as stack, \
            pytest.MonkeyPatch.context() as mp:  # fmt: skip
        resources = use_stack(stack, mp)  # the stack's variables, restored when the module is done
        report = run_partitions(stack, SEPTEMBER + OCTOBER + NOVEMBER)
        assert report.success, report.failures
        yield stack, resources, mp


def archive_month(stack, resources, mp, month: str, now: datetime) -> dict:
    """Materialize the archive asset of `month` with the clock at `now`, as the monthly job does."""
    run_resources = {**use_stack(stack, mp), "clock": Clock(frozen_at=now.isoformat())}
    with DagsterInstance.ephemeral() as instance:
        result = materialize(graph(start=HISTORY_START), selection=[AssetKey(names.ARCHIVE)], resources=run_resources,
                             instance=instance, partition_key=f"{month}-01", raise_on_error=False)  # fmt: skip
    assert result.success, [e.message for e in result.all_events if e.is_step_failure]
    return metadata(result, names.ARCHIVE)


def dynamodb(stack):
    return boto3.client("dynamodb", endpoint_url=stack.aws.endpoint_url, region_name="us-west-2",
                        **LOCAL_AWS_CREDENTIALS)  # fmt: skip


def guard(stack, resources) -> ExpiryGuard:
    return ExpiryGuard(MonthArchive(resources["store"], HISTORY_START), resources["history"])


def month_files(stack, month: str) -> dict[str, bytes]:
    s3, bucket = s3_client(stack), stack.settings.write_bucket
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=ak.manifest_key(month))["Body"].read())
    return {f["key"]: s3.get_object(Bucket=bucket, Key=f["key"])["Body"].read() for f in manifest["files"]}


def busiest(stack) -> tuple[str, str]:
    """(InstanceType, Region) of the market with the most stored point items."""
    points = [i for i in table_items(stack) if "series" in i and "AsOf" not in i]
    counts = pd.Series([i["pk"]["S"] for i in points]).value_counts()
    item = next(i for i in points if i["pk"]["S"] == counts.index[0])
    return item["InstanceType"]["S"], item["Region"]["S"]


def queries(stack) -> list[dict]:
    instance_type, region = busiest(stack)
    one = dict(instance_type=instance_type, region=region)
    every = dict(instance_type=instance_type, region="*")
    return [
        dict(**one, start="2026-09-29", end="2026-10-01"),  # archive only
        dict(**every, start="2026-09-30", end="2026-09-30"),  # archive only, every region
        dict(**one, start="2026-10-10", end="2026-11-09"),  # as of start from the archive, points from DynamoDB
        dict(**one, availability_zone="1", start="2026-11-09", end="2026-11-09"),  # DynamoDB, as-of from both
        dict(**one, start="2026-10-01 00:00:00", end="2026-10-01 00:10:00"),  # October's first points
        dict(**every, start="2026-11-09", end="2026-11-09 23:59:59"),  # every region, both tiers
        dict(**one, instance_tier="Standard", start="2026-09-30 12:00:00", end="2026-10-30"),  # gap, both months
    ]


def answers(stack, resources, asked: list[dict], archived: bool) -> list[list[dict]]:
    source = ArchiveSource(s3_client(stack), stack.settings.write_bucket) if archived else None
    return [answer_history(resources["history"], archive=source, now=NOW, **q).records for q in asked]


def test_an_item_never_expires_while_its_month_is_not_archived_or_its_archive_is_wrong(history):
    stack, resources, mp = history
    table, items = stack.settings.dynamodb_table, len(table_items(stack))
    decision = guard(stack, resources).reconcile(NOW)
    assert (decision.enabled, decision.due) == (False, ["2026-09", "2026-10"])
    assert "2026-09 is not archived" in decision.reason
    assert expire_as_ttl_would(dynamodb(stack), table, NOW) == 0

    meta = archive_month(stack, resources, mp, "2026-09", datetime(2026, 10, 1, 7, tzinfo=UTC))
    assert meta["partitions_committed"].startswith("4 of ")
    manifest = json.loads(s3_client(stack).get_object(Bucket=stack.settings.write_bucket,
                                                      Key=ak.manifest_key("2026-09"))["Body"].read())  # fmt: skip
    assert manifest["complete"] is False and "2026-09-30-12:00" in manifest["partitions"]["lost"]
    assert len(manifest["partitions"]["lost"]) == manifest["partitions"]["expected"] - 4
    # October is due too and not archived: still nothing may expire
    assert guard(stack, resources).reconcile(NOW).enabled is False
    archive_month(stack, resources, mp, "2026-10", NOW)
    # September was checked on 10-01, before it became due: only the check before expiry lets it go
    decision = guard(stack, resources).reconcile(NOW)
    assert decision.enabled is False and "2026-09 was last checked 2026-10-01 07:00:00" in decision.reason

    # a file changed since that check: the check before expiry finds it, and TTL stays off
    files = month_files(stack, "2026-09")
    key = next(k for k in files if "/changes/" in k)
    s3_client(stack).put_object(Bucket=stack.settings.write_bucket, Key=key, Body=files[key][:-1] + b"!")
    decision = guard(stack, resources).reconcile(NOW, reverify=True)
    assert decision.enabled is False
    assert "SHA-256" in decision.reason and key in decision.reason
    assert "2026-09" not in MonthArchive(resources["store"], HISTORY_START).index()["months"]
    assert expire_as_ttl_would(dynamodb(stack), table, NOW) == 0
    # the file missing: the same
    s3_client(stack).delete_object(Bucket=stack.settings.write_bucket, Key=key)
    assert guard(stack, resources).reconcile(NOW, reverify=True).enabled is False
    assert expire_as_ttl_would(dynamodb(stack), table, NOW) == 0
    assert len(table_items(stack)) == items

    # re-running the month writes the same bytes, and verifies again
    archive_month(stack, resources, mp, "2026-09", datetime(2026, 10, 1, 7, tzinfo=UTC))
    assert month_files(stack, "2026-09") == files
    # the check before expiry passes now: TTL goes on
    decision = guard(stack, resources).reconcile(NOW, reverify=True)
    assert (decision.enabled, decision.changed) == (True, True), decision.reason


def test_after_expiry_the_same_queries_answer_exactly_as_before(history):
    stack, resources, _ = history
    asked = queries(stack)
    before = answers(stack, resources, asked, archived=False)  # every item still in DynamoDB
    assert all(before) and sum(map(len, before)) > 100
    assert answers(stack, resources, asked, archived=True) == before  # the tiers, while both still hold September

    decision = guard(stack, resources).reconcile(NOW, reverify=True)
    assert decision.enabled is True, decision.reason
    deleted = expire_as_ttl_would(dynamodb(stack), stack.settings.dynamodb_table, NOW)
    left = table_items(stack)
    assert deleted > 0
    assert all(int(i[ak.EXPIRY_ATTRIBUTE]["N"]) >= NOW.timestamp() for i in left if ak.EXPIRY_ATTRIBUTE in i)
    assert not any(i["sk"]["S"].startswith("2026-09") for i in left)  # September is gone from DynamoDB
    assert any(i["sk"]["S"].startswith("2026-10-01") for i in left)  # October's first points are not yet

    assert answers(stack, resources, asked, archived=True) == before
    assert answers(stack, resources, asked, archived=False) != before  # without the archive, September is missing
    # the stack's query endpoint (the production handler over HTTP, the wall clock: September is past retention)
    # answers the web site's request from the archive
    first = asked[0]
    params = {"TableName": "azure", "InstanceType": first["instance_type"], "Region": first["region"],
              "InstanceTier": "*", "AvailabilityZone": "*", "Start": first["start"], "End": first["end"]}  # fmt: skip
    answer = requests.get(stack.query_api.url, params=params, timeout=60).json()
    assert (answer["Status"], answer["Data"]) == (200, before[0])


def test_duckdb_reads_exactly_the_months_stored_changes(history, tmp_path):
    stack, resources, _ = history
    for key, data in month_files(stack, "2026-09").items():
        if key.endswith(".parquet"):
            path = tmp_path / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    glob = str(tmp_path / ak.ARCHIVE_PREFIX / "changes" / "*" / "*.parquet")
    found = duckdb.sql(f"SELECT * EXCLUDE (month) FROM read_parquet('{glob}', hive_partitioning = true) "
                       "WHERE month = '2026-09'").df()  # fmt: skip
    stored = pd.concat([load_frame(resources["store"], names.CHANGES, key) for key in SEPTEMBER])
    expected = archive.sort_rows(archive.archive_rows(stored))
    assert len(found) == len(stored) > 0
    pd.testing.assert_frame_equal(archive.sort_rows(found)[archive.ARCHIVE_COLUMNS], expected, check_dtype=False)
    months = duckdb.sql(f"SELECT DISTINCT substr(Time, 1, 7) AS m FROM read_parquet('{glob}')").df()["m"].tolist()
    assert months == ["2026-09"]
