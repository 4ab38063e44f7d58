"""Operating the graph: schedules, backfills of past ranges (stored Parquet or legacy .pkl.gz) in one run,
and the metadata every materialization records."""

from __future__ import annotations

import gzip
import io
import pickle
from datetime import UTC, datetime

import pandas as pd
from dagster import AssetKey, DagsterInstance, build_schedule_context

from resources.aws import make_client
from resources.clock import Clock
from resources.legacy_history import import_partitions
from spotlake_assets.core import names
from spotlake_assets.core.layout import LATEST_JSON_KEY, frame_key, public_csv_key
from spotlake_assets.core.timekeys import DEFAULT_PARTITION_START, data_time
from spotlake_assets.defs import build_resources
from spotlake_assets.jobs import build_jobs
from spotlake_assets.local.aws import provision
from spotlake_assets.local.run import run_partitions
from spotlake_assets.partitions import Partitions

from .stack import (
    fail_sps_source,
    forget_merged,
    graph,
    load_frame,
    materialize_only,
    run_assets,
    s3_client,
    start,
    table_items,
    use_stack,
)

GRAPH = graph(*names.TEN_MINUTE_ASSETS)
RANGE = ["2026-11-26-10:00", "2026-11-26-10:10", "2026-11-26-10:20", "2026-11-26-10:30"]


def ranged(keys: list[str]) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}


def test_schedules_ask_for_the_partition_that_just_closed():
    _, (collect_schedule, request_pool_schedule) = build_jobs(Partitions.starting_at(DEFAULT_PARTITION_START))
    with DagsterInstance.ephemeral() as instance:
        tick = build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 27, 10, 20, tzinfo=UTC)
        )
        [request] = collect_schedule.evaluate_tick(tick).run_requests
        assert request.partition_key == "2026-11-27-10:10"  # window [10:10, 10:20), data time 10:20
        assert request.job_name == "azure_collect_10min"
        tick = build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 27, 0, 15, tzinfo=UTC)
        )
        [request] = request_pool_schedule.evaluate_tick(tick).run_requests
        assert request.partition_key == "2026-11-27"
    assert collect_schedule.cron_schedule == "*/10 * * * *"


def test_a_range_is_backfilled_in_one_run_from_stored_snapshots(monkeypatch):
    """The whole graph over a past range in one run: raw assets import what was stored, the merge runs oldest
    first, and the history equals the one the live runs wrote."""
    with start() as stack:
        resources = use_stack(stack, monkeypatch)
        assert run_partitions(stack, RANGE).success
        history = resources["history"]
        live = history.count_items()
        live_state = resources["store"].get(frame_key("azure_spot_state", RANGE[-1]))
        forget_merged(stack, resources)

        # a day later: every partition of the range is in the past
        resources["clock"] = Clock(frozen_at=datetime(2026, 11, 27, 12, tzinfo=UTC).isoformat())
        with DagsterInstance.ephemeral() as instance:
            result = materialize_only(GRAPH, resources, instance, tags=ranged(RANGE))
            assert result.success
            runs = instance.get_runs()
        assert len(runs) == 1
        assert history.count_items() == live
        assert resources["store"].get(frame_key("azure_spot_state", RANGE[-1])) == live_state


def legacy_frames(monkeypatch, key: str) -> dict[str, pd.DataFrame]:
    """Raw frames of a partition in the legacy columns, made by collecting it once on a scratch stack."""
    with start(seed=5) as scratch:
        store = use_stack(scratch, monkeypatch)["store"]
        sources = graph("azure_price_raw", "azure_eviction_raw")
        assert run_assets(scratch, monkeypatch, sources, key, data_time(key)).success
        return {a: load_frame(store, a, key) for a in ("azure_price_raw", "azure_eviction_raw")}


def test_legacy_pickles_are_converted_offline_then_backfilled(monkeypatch):
    """Legacy history (gzip pickles at the legacy keys, legacy columns, SPS at the legacy's own desired count) in a
    trusted bucket is converted to Parquet by the offline import, then backfilled through the whole graph and
    published."""
    keys = RANGE[:2]
    frames = {key: legacy_frames(monkeypatch, key) for key in keys}
    with start() as stack:
        use_stack(stack, monkeypatch)
        provision(stack.aws.endpoint_url, ["spotlake-legacy"], "us-west-2")
        s3 = s3_client(stack)
        legacy_counts = {keys[0]: 5, keys[1]: 10}  # not what this collector would ask at those times
        for key in keys:
            t = data_time(key)
            price = frames[key]["azure_price_raw"]
            scored = price[price["InstanceTier"] == "Standard"].head(4)
            sps = pd.DataFrame(
                {
                    "DesiredCount": legacy_counts[key],
                    "RegionCodeSPS": scored["armRegionName"].to_list(),
                    "Region": scored["Region"].to_list(),
                    "InstanceTypeSPS": ("Standard_" + scored["InstanceType"]).to_list(),
                    "InstanceTier": "Standard",
                    "InstanceType": scored["InstanceType"].to_list(),
                    "AvailabilityZone": "1",
                    "Score": 3,
                    "T3": legacy_counts[key],
                    "T2": legacy_counts[key],
                }
            )
            objects = {
                f"rawdata/azure/spot_price/{t:%Y/%m/%d}/{t:%H-%M}_spot_price.pkl.gz": price,
                f"rawdata/azure/spot_if/{t:%Y/%m/%d}/{t:%H-%M}_spot_if.pkl.gz": frames[key]["azure_eviction_raw"],
                f"rawdata/azure/sps/{t:%Y/%m/%d}/{t:%H-%M}_sps_{legacy_counts[key]}.pkl.gz": sps,
            }
            for k, frame in objects.items():
                s3.put_object(Bucket="spotlake-legacy", Key=k, Body=gzip.compress(pickle.dumps(frame)))

        resources = build_resources(stack.settings)
        client = make_client("s3", endpoint_url=stack.aws.endpoint_url, region_name="us-west-2")
        report = import_partitions(client, "spotlake-legacy", resources["store"], keys)
        assert len(report.written) == 6 and report.missing == []
        with DagsterInstance.ephemeral() as instance:
            result = materialize_only(GRAPH, resources, instance, tags=ranged(keys))
        assert result.success
        store = resources["store"]
        for key in keys:
            csv = pd.read_csv(io.BytesIO(gzip.decompress(store.get(public_csv_key(key)))))
            assert set(csv["DesiredCount"]) == {legacy_counts[key]}
            assert len(csv) == 4 and set(csv["Score"]) == {3}
            # converted snapshots are stored as Parquet beside the legacy layout
            assert store.get(frame_key("azure_price_raw", key)) is not None
        assert store.get(LATEST_JSON_KEY) is not None
        assert resources["history"].count_items() > 0


def test_materializations_record_duration_rows_and_peak_rss(monkeypatch):
    with start() as stack, DagsterInstance.ephemeral() as instance:
        key = RANGE[0]
        assert run_assets(stack, monkeypatch, graph("azure_price_raw"), key, data_time(key), instance=instance).success
        event = instance.get_latest_materialization_event(AssetKey("azure_price_raw"))
        metadata = event.asset_materialization.metadata
        assert metadata["rows"].value > 0
        assert metadata["duration_s"].value > 0
        assert metadata["peak_rss_mib"].value >= metadata["rss_mib"].value > 10


def test_a_backfill_over_a_partition_whose_source_failed_live_remakes_its_partial_snapshot(monkeypatch):
    with start() as stack:
        resources = use_stack(stack, monkeypatch)
        assert run_partitions(stack, RANGE[:1]).success
        fail_sps_source(stack, monkeypatch)  # the next partition's SPS fails live
        partial = run_partitions(stack, RANGE[1:2])
        assert partial.success and partial.partitions[0].missing_sources == ["sps"]
        live_items = table_items(stack)
        # re-merge the range from scratch (as after a logic fix): history and states go, raw snapshots stay
        forget_merged(stack, resources)

        resources["clock"] = Clock(frozen_at=datetime(2026, 11, 27, 12, tzinfo=UTC).isoformat())
        with DagsterInstance.ephemeral() as instance:
            result = materialize_only(GRAPH, resources, instance, tags=ranged(RANGE[:2]))
        assert result.success
        merged = [
            e
            for e in result.get_asset_materialization_events()
            if e.asset_key.to_user_string() == "azure_spot_snapshot"
        ]
        assert sorted(e.partition for e in merged) == RANGE[:2]
        assert table_items(stack) == live_items
