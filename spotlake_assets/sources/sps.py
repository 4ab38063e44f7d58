"""Spot Placement Scores: the daily request pool and the 10-minute collection."""

from datetime import UTC, datetime, timedelta

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    Failure,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    asset,
)

from resources.azure import AzureResource
from resources.clock import Clock
from resources.io_manager import MissingSnapshotError, read_frame
from resources.s3 import S3Store
from resources.sps_collector import SpsCollectionError, SpsCollector
from resources.sps_state import SpsStateStore
from spotlake_assets.core.layout import key_stem, raw_key_stem
from spotlake_assets.core.sps.answers import score_rows
from spotlake_assets.core.sps.packing import baseline_requests
from spotlake_assets.core.sps.pool import build_pool, coverage, in_pool, region_names, requests_of, size_info
from spotlake_assets.monitoring import measure, run_metadata

from ..partitions import (
    DAILY_PARTITIONS,
    TEN_MINUTE_PARTITIONS,
    desired_count,
    partition_key_for_data_time,
)
from .outcome import collected_check, raw_outputs

SPS_POOL = "azure_sps"  # Dagster concurrency pool: one SPS collection at a time


def first_price_of_day(store: S3Store, day: datetime) -> tuple[pd.DataFrame, str]:
    """The day's first price snapshot: the earliest one filed under the day (by data time) in either bucket."""
    prefix = raw_key_stem("azure_price_raw", partition_key_for_data_time(day.replace(tzinfo=UTC)))
    prefix = prefix[: prefix.rindex("/") + 1]
    keys = sorted(k for bucket in store.read_order for k in store.list_keys(prefix, bucket) if k.endswith(".parquet"))
    if not keys:
        raise Failure(
            f"no azure_price_raw snapshot filed under {prefix}; materialize azure_price_raw for the day first"
        )
    first = keys[0]
    return read_frame(store, first.removesuffix(".parquet")), first


@asset(
    partitions_def=DAILY_PARTITIONS,
    group_name="sps",
    kinds={"pandas"},
    deps=[AssetDep("azure_price_raw", partition_mapping=TimeWindowPartitionMapping())],
)
def azure_sps_request_pool(context: AssetExecutionContext, store: S3Store) -> Output[pd.DataFrame]:
    """Every (region code, size) pair of the day's first price snapshot, minus the regions and sizes SPS has
    answered as invalid (persisted), packed into requests of at most 8 regions x 5 sizes. One row per pair with
    the id of the request that asks for it, the region's display name and the size's tier and type."""
    day = context.partition_time_window.start
    with measure() as m:
        price, source = first_price_of_day(store, day)
        learned = SpsStateStore(store).load()
        pool = build_pool(price, learned.invalid_regions, learned.invalid_sizes)
        pairs = list(zip(pool["RegionCodeSPS"], pool["InstanceTypeSPS"], strict=True))
        baseline = len(baseline_requests(pairs))
    requests = int(pool["request_id"].nunique())
    return Output(
        pool,
        metadata={
            "rows": len(pool),
            "pairs": len(pool),
            "requests": requests,
            "baseline_requests": baseline,
            "price_snapshot": source,
            "invalid_regions_left_out": len(learned.invalid_regions),
            "invalid_sizes_left_out": len(learned.invalid_sizes),
            **run_metadata(m),
        },
    )


def pool_for(store: S3Store, partition_key: str) -> tuple[pd.DataFrame, str]:
    """The request pool of the partition's day, else of the day before (the day's pool is built from its first
    partitions, so the first partitions of a day use yesterday's)."""
    day = datetime.strptime(partition_key[:10], "%Y-%m-%d")
    for d in (day, day - timedelta(days=1)):
        pool_key = d.strftime("%Y-%m-%d")
        try:
            return read_frame(store, key_stem("azure_sps_request_pool", pool_key)), pool_key
        except MissingSnapshotError:
            continue
    # a missing pool fails the SPS source only: price and IF still make a partial snapshot
    raise SpsCollectionError(f"no azure_sps_request_pool for {day:%Y-%m-%d} or the day before; materialize it first")


@asset(
    partitions_def=TEN_MINUTE_PARTITIONS,
    group_name="collect",
    kinds={"azure", "pandas"},
    pool=SPS_POOL,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[AssetDep(azure_sps_request_pool, partition_mapping=TimeWindowPartitionMapping(start_offset=-1))],
    check_specs=[
        collected_check("azure_sps_raw"),
        AssetCheckSpec(
            "sps_coverage",
            asset="azure_sps_raw",
            description="Share of the request pool's valid pairs that got a score",
        ),
    ],
)
def azure_sps_raw(context: AssetExecutionContext, azure: AzureResource, store: S3Store, clock: Clock):
    """Spot Placement Scores of every pool pair at the partition's desired count (1, 5, ..., 50, a pure
    function of the partition key, restarting at 1 at 00:00 UTC), one row per (DesiredCount, region, size,
    zone). Past partitions import their stored snapshot.

    Calls are spread round-robin over (subscription, URL location) pairs, at most 10 per pair per 62 minutes,
    reserved in the persisted rotation state before they are sent. Invalid regions and sizes are learned and
    persisted. When quota runs out the asset keeps what it has and reports skipped requests and coverage.
    """
    outcome: dict[str, float] = {}

    def collect(t):
        key = context.partition_key
        count = desired_count(key)
        pool, pool_day = pool_for(store, key)
        collector = SpsCollector(
            client=azure.sps_client(),
            state=SpsStateStore(store),
            subscriptions=azure.principal().subscriptions,
            clock=clock.now,
        )
        run = collector.collect(requests_of(pool), count)
        try:
            rows, unknown = score_rows(run.answers, count, region_names(pool), size_info(pool))
        except ValueError as exc:  # an answer without the fields of the API's contract
            raise SpsCollectionError(f"malformed SPS answer: {exc}") from exc
        rows = in_pool(rows, pool)
        # pairs known invalid, before this run (the collector skipped them) or by it, are not wanted
        invalid_regions = {r.casefold() for r in (*run.known_invalid_regions, *run.learned_regions)}
        invalid_sizes = {s.casefold() for s in (*run.known_invalid_sizes, *run.learned_sizes)}
        learned = pool["RegionCodeSPS"].str.casefold().isin(invalid_regions) | pool[
            "InstanceTypeSPS"
        ].str.casefold().isin(invalid_sizes)
        outcome.update(
            coverage=round(coverage(rows, pool[~learned]), 4),
            skipped_requests=run.skipped_requests,
            failed_requests=run.failed_requests,
        )
        return rows, {
            "desired_count": count,
            "pool_day": pool_day,
            "requests_planned": int(pool["request_id"].nunique()),
            "calls": run.calls,
            "retries": run.retries,
            "throttled": run.throttled,
            "learned_invalid_regions": MetadataValue.json(sorted(run.learned_regions)),
            "learned_invalid_sizes": MetadataValue.json(sorted(run.learned_sizes)),
            "pairs_used": len(run.pairs_used),
            "unknown_scores": unknown,
            "errors": MetadataValue.json(run.errors),
            "data_time": MetadataValue.timestamp(t),
            **outcome,
        }

    mode = yield from raw_outputs(context, "azure_sps_raw", store, clock, collect)
    yield AssetCheckResult(
        check_name="sps_coverage",
        # imported snapshots were checked when they were collected
        passed=mode == "imported" or outcome.get("coverage", 0.0) >= 1.0,
        severity=AssetCheckSeverity.WARN,
        metadata=outcome or {"coverage": 0.0, "mode": mode},
    )
