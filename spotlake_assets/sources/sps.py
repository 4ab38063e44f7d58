"""Spot Placement Scores: the 10-minute collection of the request pool's pairs (the daily pool itself is
spotlake_assets/sources/sps_pool.py)."""

from collections import Counter

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    MetadataValue,
)

from resources.azure import AzureResource
from resources.clock import Clock
from resources.io_manager import StoredPartitions
from resources.s3 import S3Store
from resources.sps_collector import SpsCollectionError, SpsCollector
from resources.sps_state import SpsStateStore

from ..core import names
from ..core.sps.answers import score_rows
from ..core.sps.pool import coverage, in_pool, region_names, requests_of, size_info
from ..core.timekeys import desired_count
from ..partitions import POOL_OF_DAY_OR_DAY_BEFORE, Partitions
from .collection import raw_snapshot, source_asset
from .sps_pool import pool_of_prices

SPS_POOL = "azure_sps"  # Dagster concurrency pool: one SPS collection at a time


def build_sps_raw_asset(partitions: Partitions) -> AssetsDefinition:
    @source_asset(
        names.SPS_RAW,
        partitions,
        pool=SPS_POOL,
        ins={
            "pools": AssetIn(names.SPS_REQUEST_POOL, partition_mapping=POOL_OF_DAY_OR_DAY_BEFORE),
            # only when no pool is stored yet (a fresh deployment): the partition's own prices make one
            "prices": AssetIn(names.PRICE_RAW),
        },
        check_specs=(
            AssetCheckSpec(
                "sps_coverage",
                asset=names.SPS_RAW,
                description="Share of the request pool's valid pairs that got a score",
            ),
            AssetCheckSpec(
                "sps_scores_known",
                asset=names.SPS_RAW,
                description="Every score string is a known one (an unknown one keeps its series' last score)",
            ),
            AssetCheckSpec(
                "sps_subscriptions",
                asset=names.SPS_RAW,
                description="No subscription is parked for lacking the Compute Recommendations Role (a 403)",
            ),
        ),
    )
    def azure_sps_raw(
        context: AssetExecutionContext,
        azure: AzureResource,
        store: S3Store,
        clock: Clock,
        pools: StoredPartitions,
        prices: StoredPartitions,
    ):
        """Spot Placement Scores of every pool pair at the partition's desired count (1, 5, ..., 50, a pure
        function of the partition key, restarting at 1 at 00:00 UTC), one row per (DesiredCount, region, size,
        zone).

        The pool is the day's, else the day before's; a deployment with no pool yet builds one from the
        partition's own price snapshot. Calls are spread round-robin over (subscription, URL location) pairs, at
        most 10 per pair per 62 minutes, reserved in the persisted rotation state before they are sent. Invalid
        regions and sizes are learned and persisted. When quota runs out the asset keeps what it has and reports
        skipped requests and coverage.
        """
        outcome: dict[str, float] = {}
        missing_role: list[str] = []
        unknown_scores: Counter[str] = Counter()

        def request_pool(key: str) -> tuple[pd.DataFrame, str]:
            for day in sorted(pools, reverse=True):
                pool = pools[day]
                if pool is not None:
                    return pool, day
            price = prices[key]
            if price is None:
                # a missing pool fails the SPS source only: price and IF still make a partial snapshot
                raise SpsCollectionError(
                    f"no azure_sps_request_pool for {key[:10]} or the day before, and no price snapshot of {key} "
                    "to build one from"
                )
            return pool_of_prices(price, store, clock.now())[0], f"built from prices of {key}"

        def collect(t):
            key = context.partition_key
            count = desired_count(key)
            pool, pool_source = request_pool(key)
            collector = SpsCollector(
                client=azure.sps_client(),
                state=SpsStateStore(store),
                subscriptions=azure.principal().subscriptions,
                clock=clock.now,
                max_calls=azure.sps_max_calls_per_run,  # `test` spends production's quota: capped (security.md)
            )
            run = collector.collect(requests_of(pool), count)
            scored = score_rows(run.answers, count, region_names(pool), size_info(pool))
            if scored.rejections.too_many():
                raise SpsCollectionError(f"malformed SPS answers: {scored.rejections.summary()}")
            unknown_scores.update(scored.unknown_scores)
            rows = in_pool(scored.rows, pool)
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
            missing_role.extend(run.subscriptions_missing_role)
            return rows, {
                "desired_count": count,
                "pool": pool_source,
                "requests_planned": int(pool["request_id"].nunique()),
                "calls": run.calls,
                "discovery_calls": run.discovery_calls,
                "call_cap": "none" if azure.sps_max_calls_per_run is None else azure.sps_max_calls_per_run,
                "call_cap_reached": run.capped,
                "retries": run.retries,
                "throttled": run.throttled,
                "learned_invalid_regions": MetadataValue.json(sorted(run.learned_regions)),
                "learned_invalid_sizes": MetadataValue.json(sorted(run.learned_sizes)),
                "pairs_used": len(run.pairs_used),
                "unknown_scores": sum(scored.unknown_scores.values()),
                "entries_rejected": scored.rejections.rejected,
                "errors": MetadataValue.json(run.errors),
                "parked_subscriptions": MetadataValue.json(run.parked_subscriptions_metadata()),
                "subscriptions_forbidden": len(run.forbidden_subscriptions),
                "subscriptions_rested": len(run.rested_subscriptions),
                "ignored_locations": MetadataValue.json(list(run.ignored_locations)),
                "data_time": MetadataValue.timestamp(t),
                **outcome,
            }

        mode = yield from raw_snapshot(context, names.SPS_RAW, store, clock, collect)
        yield AssetCheckResult(
            check_name="sps_coverage",
            # imported snapshots were checked when they were collected
            passed=mode == "imported" or outcome.get("coverage", 0.0) >= 1.0,
            severity=AssetCheckSeverity.WARN,
            metadata=outcome or {"coverage": 0.0, "mode": mode},
        )
        yield AssetCheckResult(
            check_name="sps_scores_known",
            passed=not unknown_scores,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "unknown_scores": sum(unknown_scores.values()),
                **(
                    {
                        "values": MetadataValue.json(dict(unknown_scores.most_common(10))),
                        "error": f"{sum(unknown_scores.values())} scores of unknown value(s) "
                        f"{sorted(unknown_scores)[:5]}: their series keep their last score; the SPS API may have "
                        "added a value (docs/contract.md)",
                    }
                    if unknown_scores
                    else {}
                ),
            },
        )
        yield AssetCheckResult(
            check_name="sps_subscriptions",
            passed=not missing_role,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "missing_role": len(missing_role),
                **(
                    {
                        "error": f"{len(missing_role)} subscription(s) answer 403: grant them the Compute "
                        "Recommendations Role; parked for a day"
                    }
                    if missing_role
                    else {}
                ),
            },
        )

    return azure_sps_raw
