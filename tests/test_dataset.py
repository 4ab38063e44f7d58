"""The merged dataset end to end on the local stack: change-only history in DynamoDB, idempotent re-runs,
public outputs, partial snapshots and a one-run backfill equal to the live runs."""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import replace

import pandas as pd
from dagster import DagsterInstance

from spotlake_assets.core.layout import ASSOCIATION_KEY, LATEST_JSON_KEY, QUERY_SELECTOR_KEY, frame_key, public_csv_key
from spotlake_assets.core.timekeys import DEFAULT_PARTITION_START, desired_count
from spotlake_assets.core.transforms.state import ROW_COLUMNS
from spotlake_assets.defs import build_resources
from spotlake_assets.local.run import run_partitions

from .stack import (
    check_evaluations,
    fail_sps_source,
    forget_merged,
    graph,
    load_frame,
    materialize_only,
    points,
    s3_client,
    start,
    table_items,
    use_stack,
)

# data times 23:50 and 00:00: the one pair of consecutive partitions with the same desired count (1)
LAST_OF_DAY = ["2026-11-26-23:40", "2026-11-26-23:50"]
RANGE = ["2026-11-26-10:00", "2026-11-26-10:10", "2026-11-26-10:20"]


def test_consecutive_partitions_without_drift_write_nothing_for_the_second(monkeypatch):
    assert desired_count(LAST_OF_DAY[0]) == desired_count(LAST_OF_DAY[1]) == 1
    with start(drift_rate=0) as stack:
        use_stack(stack, monkeypatch)
        report = run_partitions(stack, LAST_OF_DAY)
        assert report.success, report.failures
        first, second = report.partitions
        assert first.changes_written > 0 and first.missing_sources == []
        assert second.changes_written == 0


def test_k_drifted_series_write_exactly_k_items(monkeypatch):
    with start(drift_rate=0) as stack:
        resources = use_stack(stack, monkeypatch)
        assert run_partitions(stack, LAST_OF_DAY[:1]).success
        before = len(points(table_items(stack)))
        sps = load_frame(resources["store"], "azure_sps_raw", LAST_OF_DAY[0])
        scored = sps[sps["Score"] > 0].sort_values(["RegionCodeSPS", "InstanceTypeSPS", "AvailabilityZone"])
        k = 3
        overrides = {}
        for row in scored.head(k).itertuples():
            zone = "single" if row.AvailabilityZone == "Single" else row.AvailabilityZone
            new_score = "Low" if row.Score >= 2 else "High"
            overrides[f"{row.RegionCodeSPS}|{row.InstanceTypeSPS}|{zone}|1"] = new_score
        stack.emulator.configure(overrides={"score": overrides})

        report = run_partitions(stack, LAST_OF_DAY[1:])
        assert report.success, report.failures
        assert report.partitions[0].changes_written == k
        assert len(points(table_items(stack))) == before + k


def test_rerunning_a_partition_leaves_the_table_unchanged(monkeypatch):
    with start() as stack:
        use_stack(stack, monkeypatch)
        assert run_partitions(stack, RANGE[:2]).success
        items = table_items(stack)
        assert run_partitions(stack, RANGE[1:2]).success
        assert table_items(stack) == items


def test_public_outputs_parse_as_the_legacy_consumers_expect(monkeypatch):
    with start() as stack:
        resources = use_stack(stack, monkeypatch)
        store = resources["store"]
        assert run_partitions(stack, RANGE[:1]).success
        first_selector = json.loads(store.get(QUERY_SELECTOR_KEY))
        assert run_partitions(stack, RANGE[1:]).success
        s3 = s3_client(stack)
        bucket = stack.settings.write_bucket

        latest = json.loads(store.get(LATEST_JSON_KEY))
        assert latest and all(list(r) == ["id", *ROW_COLUMNS] for r in latest)
        assert [r["id"] for r in latest] == list(range(1, len(latest) + 1))
        workloads = [(r["InstanceTier"], r["InstanceType"], r["Region"], r["AvailabilityZone"]) for r in latest]
        assert len(workloads) == len(set(workloads))  # one row per workload
        for r in latest:
            assert isinstance(r["Score"], int) and isinstance(r["SpotPrice"], int | float)
            assert isinstance(r["AvailabilityZone"], str) and len(r["Time"]) == 19

        csv = pd.read_csv(io.BytesIO(gzip.decompress(store.get(public_csv_key(RANGE[-1])))))
        assert list(csv.columns) == ROW_COLUMNS
        assert set(csv["DesiredCount"]) == {desired_count(RANGE[-1])}
        assert set(csv["Time"]) == {"2026-11-26 10:30:00"}

        selector = json.loads(store.get(QUERY_SELECTOR_KEY))
        as_set = {tuple(r.values()) for r in selector}
        assert {tuple(r.values()) for r in first_selector} <= as_set  # never loses a key
        assert all(list(r) == ["InstanceTier", "InstanceType", "Region"] for r in selector)

        association = json.loads(store.get(ASSOCIATION_KEY))
        # the web site reads element 0: every instance type of the latest rows, with their region display names
        assert {r["InstanceType"] for r in latest} <= set(association[0])
        assert all(set(v) == {"Region"} and v["Region"] == sorted(v["Region"]) for v in association[0].values())
        assert {(r["InstanceType"], r["Region"]) for r in latest} <= {
            (t, region) for t, v in association[0].items() for region in v["Region"]
        }

        for key in (LATEST_JSON_KEY, QUERY_SELECTOR_KEY, ASSOCIATION_KEY, public_csv_key(RANGE[0])):
            grants = s3.get_object_acl(Bucket=bucket, Key=key)["Grants"]
            assert any(
                g["Grantee"].get("URI", "").endswith("/global/AllUsers") and g["Permission"] == "READ" for g in grants
            ), key


def test_a_failed_source_gives_a_partial_snapshot_that_is_still_published(monkeypatch):
    with start() as stack:
        resources = use_stack(stack, monkeypatch)
        assert run_partitions(stack, RANGE[:1]).success
        latest = resources["store"].get(LATEST_JSON_KEY)
        fail_sps_source(stack, monkeypatch)
        report = run_partitions(stack, RANGE[1:2])
        assert report.success, report.failures
        [summary] = report.partitions
        assert summary.missing_sources == ["sps"]
        assert summary.rows["azure_price_raw"] > 0 and summary.rows["azure_eviction_raw"] > 0
        assert resources["store"].get(LATEST_JSON_KEY) != latest  # republished: prices and IF moved on


def test_the_first_partition_ever_without_sps_fails_visibly(monkeypatch):
    """No earlier state and no scores: the merge would publish an empty table, so the run fails instead."""
    with start() as stack:
        use_stack(stack, monkeypatch)
        fail_sps_source(stack, monkeypatch)
        report = run_partitions(stack, RANGE[:1])
        assert report.failures == [f"{RANGE[0]} azure_spot_snapshot"]
        assert LATEST_JSON_KEY not in report.output_keys


def test_one_run_backfill_equals_the_live_runs(monkeypatch):
    """Re-merge a range whose raw snapshots exist, in one run: the same state, history and outputs."""
    with start() as stack:
        resources = use_stack(stack, monkeypatch)
        store = resources["store"]
        assert run_partitions(stack, RANGE).success
        live_items = table_items(stack)
        live_state = store.get(frame_key("azure_spot_state", RANGE[-1]))
        live_csv = store.get(public_csv_key(RANGE[-1]))

        forget_merged(stack, resources)
        assert table_items(stack) == []

        with DagsterInstance.ephemeral() as instance:
            result = materialize_only(
                graph("azure_spot_snapshot", "azure_dynamodb_history", "azure_public_outputs"),
                resources,
                instance,
                tags={"dagster/asset_partition_range_start": RANGE[0], "dagster/asset_partition_range_end": RANGE[-1]},
            )
        assert result.success
        # one run materialized every partition of the range
        merged = [
            e.partition
            for e in result.get_asset_materialization_events()
            if e.asset_key.to_user_string() == "azure_spot_snapshot"
        ]
        assert sorted(merged) == RANGE
        assert check_evaluations(result)[("azure_spot_snapshot", "unique_series")].passed
        assert table_items(stack) == live_items
        assert store.get(frame_key("azure_spot_state", RANGE[-1])) == live_state
        assert store.get(public_csv_key(RANGE[-1])) == live_csv


def test_the_first_partition_ever_starts_from_empty_state_and_a_gap_is_visible_then_refused_out_of_order(monkeypatch):
    with start() as stack:
        use_stack(stack, monkeypatch)
        assert run_partitions(stack, RANGE[:1]).success
        # skipping a partition leaves a gap: the next merge goes on from the last committed state and says so
        report = run_partitions(stack, [RANGE[2]])
        assert report.success, report.failures
        assert report.partitions[0].failed_checks == ["azure_spot_snapshot / continuity"]
        assert report.partitions[0].lost_partitions == [RANGE[1]]
        # the skipped partition alone would store changes beside later ones computed without them: refused,
        # with the way to fill the gap exactly
        late = run_partitions(stack, [RANGE[1]])
        assert not late.success
        [failure] = late.failures
        assert failure.startswith(f"{RANGE[1]} azure_spot_snapshot")


def test_the_first_partition_of_the_definition_can_be_rerun(monkeypatch):
    first = DEFAULT_PARTITION_START
    with start() as stack:
        resources = use_stack(stack, monkeypatch)
        assert run_partitions(stack, [first]).success
        state = resources["store"].get(frame_key("azure_spot_state", first))
        items = table_items(stack)
        report = run_partitions(stack, [first])  # a retry of a committed first partition: same state, same history
        assert report.success, report.failures
        assert resources["store"].get(frame_key("azure_spot_state", first)) == state
        assert table_items(stack) == items


def test_moving_the_partition_start_forward_continues_the_history_exactly(monkeypatch):
    """Years: the definitions' start moves forward (fewer partitions for Dagster) and the new first partition
    continues the stored state of the one before it: no new-series flood, the archive an unmoved start gives."""
    with start() as reference:
        use_stack(reference, monkeypatch)
        unmoved = run_partitions(reference, RANGE)
        assert unmoved.success
        expected_items = table_items(reference)
        expected_state = build_resources(reference.settings)["store"].get(frame_key("azure_spot_state", RANGE[-1]))
    with start() as stack:
        use_stack(stack, monkeypatch)
        assert run_partitions(stack, RANGE[:2]).success
        # a new deployment whose first partition is RANGE[2]
        stack.settings = replace(stack.settings, partition_start=RANGE[2])
        monkeypatch.setenv("SPOTLAKE_PARTITION_START", RANGE[2])
        report = run_partitions(stack, RANGE[2:])
        assert report.success, report.failures
        [moved] = report.partitions
        assert moved.failed_checks == [] and moved.lost_partitions == []
        # the changes an unmoved start writes there, not every series again
        assert moved.changes_written == unmoved.partitions[-1].changes_written
        assert table_items(stack) == expected_items
        assert build_resources(stack.settings)["store"].get(frame_key("azure_spot_state", RANGE[-1])) == expected_state


def test_the_test_environment_never_continues_productions_state(monkeypatch):
    with start(env_name="test") as stack:
        use_stack(stack, monkeypatch)
        previous = "2026-11-26-09:50"
        # production has a state for the partition before; if test read it, this unreadable body would fail the run
        s3_client(stack).put_object(
            Bucket=stack.settings.read_bucket, Key=frame_key("azure_spot_state", previous), Body=b"prod"
        )
        report = run_partitions(stack, RANGE[:1])
        assert report.success, report.failures
        assert report.partitions[0].changes_written > 0  # started from empty: every series is new here


def test_rerunning_a_partition_with_other_data_leaves_no_stale_points(monkeypatch):
    """A partition collected again (inside its live window) with different answers replaces its points."""
    with start(drift_rate=0) as stack:
        resources = use_stack(stack, monkeypatch)
        assert run_partitions(stack, LAST_OF_DAY).success
        sps = load_frame(resources["store"], "azure_sps_raw", LAST_OF_DAY[1])
        row = sps[sps["Score"] > 0].sort_values(["RegionCodeSPS", "InstanceTypeSPS", "AvailabilityZone"]).iloc[0]
        zone = "single" if row.AvailabilityZone == "Single" else row.AvailabilityZone
        stack.emulator.configure(
            overrides={
                "score": {f"{row.RegionCodeSPS}|{row.InstanceTypeSPS}|{zone}|1": "Low" if row.Score >= 2 else "High"}
            }
        )
        changed = run_partitions(stack, LAST_OF_DAY[1:])
        assert changed.partitions[0].changes_written == 1
        at = "2026-11-27 00:00:00"
        assert len([p for _, _, p in points(table_items(stack)) if p["Time"]["S"] == at]) == 1

        stack.emulator.configure(overrides={})
        again = run_partitions(stack, LAST_OF_DAY[1:])
        assert again.partitions[0].changes_written == 0
        assert [p for _, _, p in points(table_items(stack)) if p["Time"]["S"] == at] == []
        assert [i for i in table_items(stack) if i["sk"]["S"].startswith(at)] == []  # no item left without points
