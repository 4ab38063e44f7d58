"""Operating the graph: schedules, backfills of past ranges (stored Parquet or legacy .pkl.gz) in one run,
and the metadata every materialization records."""

from __future__ import annotations

import gzip
import io
import pickle
from datetime import UTC, datetime, timedelta

import pandas as pd
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    build_schedule_context,
    instance_for_test,
)

from resources.aws import make_client
from resources.clock import Clock
from resources.legacy_history import import_partitions
from resources.settings import load_settings
from spotlake_assets.core import names
from spotlake_assets.core.layout import LATEST_JSON_KEY, frame_key, public_csv_key
from spotlake_assets.core.timekeys import DEFAULT_PARTITION_START, data_time
from spotlake_assets.defs import build_definitions, build_resources
from spotlake_assets.jobs import build_jobs
from spotlake_assets.local.aws import provision
from spotlake_assets.local.run import run_partitions
from spotlake_assets.partitions import Partitions

from .stack import (
    bucket_state,
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
    _, (collect_schedule, request_pool_schedule, _) = build_jobs(Partitions.starting_at(DEFAULT_PARTITION_START))
    # the archive's run requests name a partition, which Dagster checks against the whole definitions
    repository = build_definitions(load_settings({})).get_repository_def()
    archive_schedule = repository.get_schedule_def(f"{names.ARCHIVE_JOB}_schedule")
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

        def archived(day: datetime) -> list[tuple[str, str]]:
            tick = build_schedule_context(instance=instance, scheduled_execution_time=day, repository_def=repository)
            requests = archive_schedule.evaluate_tick(tick).run_requests
            return [(r.partition_key, r.tags["spotlake/archive"]) for r in requests]

        # the month that ended, on the 1st; its check before expiry the day before its items become due (12-01 +
        # 40 days - 2 days of margin - 1 day); nothing on other days, nothing before the history began
        assert archived(datetime(2026, 12, 1, 6, 30, tzinfo=UTC)) == [("2026-11-01", "ended")]
        assert archived(datetime(2026, 12, 8, 6, 30, tzinfo=UTC)) == [("2026-11-01", "recheck before expiry")]
        assert archived(datetime(2027, 1, 7, 6, 30, tzinfo=UTC)) == [("2026-12-01", "recheck before expiry")]
        assert archived(datetime(2026, 12, 2, 6, 30, tzinfo=UTC)) == []
        assert archived(datetime(2026, 11, 1, 6, 30, tzinfo=UTC)) == []
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


def import_legacy(stack, frames: dict[str, dict[str, pd.DataFrame]], legacy_counts: dict[str, int]):
    """Put legacy pickles of `frames` (price and IF per partition, and a small SPS snapshot at the legacy's own
    desired count) in a trusted legacy bucket, then convert them with the offline import; returns its report."""
    provision(stack.aws.endpoint_url, ["spotlake-legacy"], "us-west-2")
    s3 = s3_client(stack)
    for key, count in legacy_counts.items():
        t = data_time(key)
        price = frames[key]["azure_price_raw"]
        scored = price[price["InstanceTier"] == "Standard"].head(4)
        sps = pd.DataFrame(
            {
                "DesiredCount": count,
                "RegionCodeSPS": scored["armRegionName"].to_list(),
                "Region": scored["Region"].to_list(),
                "InstanceTypeSPS": ("Standard_" + scored["InstanceType"]).to_list(),
                "InstanceTier": "Standard",
                "InstanceType": scored["InstanceType"].to_list(),
                "AvailabilityZone": "1",
                "Score": 3,
                "T3": count,
                "T2": count,
            }
        )
        objects = {
            f"rawdata/azure/spot_price/{t:%Y/%m/%d}/{t:%H-%M}_spot_price.pkl.gz": price,
            f"rawdata/azure/spot_if/{t:%Y/%m/%d}/{t:%H-%M}_spot_if.pkl.gz": frames[key]["azure_eviction_raw"],
            f"rawdata/azure/sps/{t:%Y/%m/%d}/{t:%H-%M}_sps_{count}.pkl.gz": sps,
        }
        for k, frame in objects.items():
            s3.put_object(Bucket="spotlake-legacy", Key=k, Body=gzip.compress(pickle.dumps(frame)))
    client = make_client("s3", endpoint_url=stack.aws.endpoint_url, region_name="us-west-2")
    store = build_resources(stack.settings)["store"]
    return import_partitions(client, "spotlake-legacy", store, list(legacy_counts))


def test_legacy_pickles_are_converted_offline_then_backfilled(monkeypatch):
    """Legacy history (gzip pickles at the legacy keys, legacy columns, SPS at the legacy's own desired count) in a
    trusted bucket is converted to Parquet by the offline import, then backfilled through the whole graph and
    published."""
    keys = RANGE[:2]
    frames = {key: legacy_frames(monkeypatch, key) for key in keys}
    with start() as stack:
        use_stack(stack, monkeypatch)
        legacy_counts = {keys[0]: 5, keys[1]: 10}  # not what this collector would ask at those times
        report = import_legacy(stack, frames, legacy_counts)
        assert len(report.written) == 6 and report.missing == []
        resources = build_resources(stack.settings)
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


# ---- a past partition launched as the UI launches it: the instance's run launcher, a run worker process -------


def collect_job_of_the_environment():
    """The 10-minute job of the definitions `dagster dev` loads (the environment's settings, the deployment's
    clock: in `local`, the Azure emulator's)."""
    from resources.settings import load_settings
    from spotlake_assets.defs import build_definitions

    return build_definitions(load_settings()).resolve_job_def(names.COLLECT_JOB)


def launch_as_the_ui_does(instance, partition: str, timeout: float = 300.0):
    """Create a run of the 10-minute job for `partition` with the operator's tags (no schedule) and hand it to the
    instance's run launcher, as the UI's Materialize does once the run queue lets it go; wait for its end."""
    import time

    from dagster import reconstructable
    from dagster._core.launcher import LaunchRunContext

    job = collect_job_of_the_environment()
    run = instance.create_run_for_job(
        job,
        job_code_origin=reconstructable(collect_job_of_the_environment).get_python_origin(),
        tags={"dagster/partition": partition},
    )
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    deadline = time.monotonic() + timeout
    while not (run := instance.get_run_by_id(run.run_id)).is_finished:
        assert time.monotonic() < deadline, f"run {run.run_id} still {run.status} after {timeout} s"
        time.sleep(0.5)
    return run


def step_failures(instance, run_id: str) -> dict[str, str]:
    """Each failed step's error with its causes."""
    out = {}
    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        error, text = event.event_specific_data.error, []
        while error is not None:
            text.append(error.message)
            error = error.cause
        out[event.step_key] = " | ".join(text)
    return out


def test_a_past_partition_launched_from_the_ui_is_refused_until_its_legacy_snapshot_is_imported(monkeypatch, tmp_path):
    """A past partition with nothing stored, launched as the UI launches it (the instance's run launcher, a worker
    process, the deployment's clock two hours after its window): the run FAILS, its raw steps saying it can no
    longer be collected, and nothing is written. Once its legacy snapshot is imported, the same launch succeeds
    and publishes it."""
    key = RANGE[0]
    frames = {key: legacy_frames(monkeypatch, key)}
    with start() as stack:
        use_stack(stack, monkeypatch)
        stack.emulator.set_time(data_time(key) + timedelta(hours=2))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
        launcher = {"module": "resources.run_launcher", "class": "LocalRunLauncher", "config": {}}
        with instance_for_test(overrides={"run_launcher": launcher}, temp_dir=str(tmp_path)) as instance:
            refused = launch_as_the_ui_does(instance, key)
            assert refused.status == DagsterRunStatus.FAILURE
            failures = step_failures(instance, refused.run_id)
            assert set(failures) == {names.PRICE_RAW, names.EVICTION_RAW}  # the steps after them never ran
            for text in failures.values():
                assert f"partition {key} can no longer be collected" in text
                assert "only the newest partition can be collected" in text and "spotlake import-legacy" in text
            assert bucket_state(stack, stack.settings.write_bucket) == {}

            report = import_legacy(stack, frames, {key: 5})
            assert len(report.written) == 3
            backfilled = launch_as_the_ui_does(instance, key)
            assert backfilled.status == DagsterRunStatus.SUCCESS, step_failures(instance, backfilled.run_id)
        store = build_resources(stack.settings)["store"]
        csv = pd.read_csv(io.BytesIO(gzip.decompress(store.get(public_csv_key(key)))))
        assert len(csv) == 4 and set(csv["DesiredCount"]) == {5}


def test_the_raw_assets_say_only_the_newest_partition_is_collectable():
    """What the UI shows of each raw asset: only the newest partition is collected live, past ones import."""
    for asset in graph(*names.RAW_SOURCES):
        description = asset.descriptions_by_key[asset.key]
        assert "Only the newest partition can be collected live" in description
        assert "spotlake import-legacy" in description
