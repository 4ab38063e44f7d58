"""How a raw snapshot asset runs: collected live from Azure for the partition that has just closed, imported from
storage for past partitions (and for a range of them in one run, in a backfill).

A failed source must not stop the partition (design.md: a partial snapshot is still merged and published), so
errors from Azure are caught here, logged, shown in metadata and reported by the asset's `collected` check;
the merge then sees the source as missing. Errors of our own side (S3, a missing stored snapshot, a partition
that has not closed yet) still fail the step.
"""

import json
from collections.abc import Callable, Generator
from datetime import datetime
from typing import Any

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, Output

from resources.azure_auth import AzureCredentialsError
from resources.azure_graph import GraphCollectionError
from resources.azure_prices import PriceCollectionError
from resources.clock import Clock
from resources.http import HttpRequestError
from resources.s3 import S3Store
from resources.sps_collector import SpsCollectionError
from spotlake_assets.monitoring import measure, run_metadata

from ..partitions import data_time
from .imports import failure_marker_key, stored_snapshot

SOURCE_ERRORS = (
    HttpRequestError,
    PriceCollectionError,
    GraphCollectionError,
    AzureCredentialsError,
    SpsCollectionError,
)
CHECK = "collected"


def collected_check(asset_name: str) -> AssetCheckSpec:
    return AssetCheckSpec(CHECK, asset=asset_name, description="The source answered and gave at least one row")


Events = Generator[Output | AssetCheckResult, None, str]


def raw_outputs(
    context: AssetExecutionContext,
    asset: str,
    store: S3Store,
    clock: Clock,
    collect: Callable[[datetime], tuple[pd.DataFrame, dict[str, Any]]],
) -> Events:
    """Yield the asset's output(s) and `collected` check; returns "live", "failed" or "imported"."""
    keys = sorted(context.partition_keys)
    if len(keys) == 1:
        t = data_time(keys[0])
        clock.check_closed(keys[0], t)
        if clock.is_live(t):
            mode = yield from source_outputs(context, lambda: collect(t))
            if mode == "failed":
                record_failure(store, asset, keys[0], context)
            return mode
    # None: the source failed when the partition was live (a partial snapshot then and now)
    frames = {key: stored_snapshot(store, asset, key) for key in keys}
    failed = [k for k, f in frames.items() if f is None]
    rows = sum(len(f) for f in frames.values() if f is not None)
    context.log.info(f"imported {len(keys)} stored snapshot(s) of {asset}, {rows} rows, {len(failed)} failed live")
    yield Output(
        frames[keys[0]] if len(keys) == 1 else frames,
        metadata={"rows": rows, "imported_partitions": len(keys), "failed_partitions": len(failed)},
    )
    empty = [k for k, f in frames.items() if f is not None and f.empty]
    yield AssetCheckResult(
        check_name=CHECK,
        passed=not empty and not failed,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "imported_partitions": len(keys),
            "empty_partitions": ", ".join(empty[:10]) or "none",
            "failed_live": ", ".join(failed[:10]) or "none",
        },
    )
    return "imported"


def record_failure(store: S3Store, asset: str, partition_key: str, context: AssetExecutionContext) -> None:
    """Leave a marker where the snapshot would be, so a later import knows the source failed (not never ran)."""
    body = json.dumps({"collected": False, "run_id": context.run_id}).encode()
    store.put(failure_marker_key(asset, partition_key), body, content_type="application/json")


def source_outputs(
    context: AssetExecutionContext, collect: Callable[[], tuple[pd.DataFrame, dict[str, Any]]]
) -> Events:
    """Run `collect` (table and metadata) and yield the asset's output and its `collected` check."""
    with measure() as m:
        try:
            table, metadata = collect()
            error = None
        except SOURCE_ERRORS as exc:
            table, metadata, error = None, {}, f"{type(exc).__name__}: {exc}"
    if error is not None:
        context.log.error(f"collection failed, the partition goes on without this source: {error}")
        yield Output(None, metadata={"collection_failed": error, "rows": 0, **run_metadata(m)})
        yield AssetCheckResult(
            check_name=CHECK, passed=False, severity=AssetCheckSeverity.ERROR, metadata={"error": error}
        )
        return "failed"
    yield Output(table, metadata={"rows": len(table), **metadata, **run_metadata(m)})
    yield AssetCheckResult(
        check_name=CHECK, passed=len(table) > 0, severity=AssetCheckSeverity.ERROR, metadata={"rows": len(table)}
    )
    return "live"
