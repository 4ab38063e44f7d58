"""How a raw snapshot asset runs: collected live from Azure for the partition that has just closed, imported from
storage for past partitions (and for a range of them in one run, in a backfill).

A failed source must not stop the partition (a partial snapshot is still merged and published, docs/design.md
"Missing sources"), so errors from Azure are caught here, logged, shown in metadata and reported by the asset's
`collected` check; the IO manager stores a failure marker and the merge sees the source as missing. Errors of our
own side (S3, a past partition with nothing stored, a partition that has not closed yet) still fail the step.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from datetime import datetime
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Output,
    asset,
)

from resources.azure_auth import AzureCredentialsError
from resources.azure_graph import GraphCollectionError
from resources.azure_prices import PriceCollectionError
from resources.clock import Clock
from resources.error_text import redact
from resources.http import HttpRequestError
from resources.io_manager import PartitionStore
from resources.s3 import S3Store
from resources.sps_collector import SpsCollectionError

from ..core.timekeys import data_time
from ..monitoring import measure, run_metadata
from ..partitions import ONE_RUN, Partitions

SOURCE_ERRORS = (
    HttpRequestError,
    PriceCollectionError,
    GraphCollectionError,
    AzureCredentialsError,
    SpsCollectionError,
)
CHECK = "collected"

Collect = Callable[[datetime], tuple[pd.DataFrame, dict[str, Any]]]
Events = Generator[Output | AssetCheckResult, None, str]


def source_asset(name: str, partitions: Partitions, check_specs: tuple[AssetCheckSpec, ...] = (), **kwargs: Any):
    """The decorator of a raw snapshot asset: 10-minute partitions, its `collected` check, one run per backfill."""
    collected = AssetCheckSpec(CHECK, asset=name, description="The source answered and gave at least one row")
    return asset(
        name=name,
        partitions_def=partitions.ten_minutes,
        group_name="collect",
        kinds={"azure", "pandas"},
        check_specs=[collected, *check_specs],
        backfill_policy=ONE_RUN,
        **kwargs,
    )


def raw_snapshot(context: AssetExecutionContext, asset: str, store: S3Store, clock: Clock, collect: Collect) -> Events:
    """Yield the asset's output and `collected` check; returns "live", "failed" or "imported"."""
    keys = sorted(context.partition_keys)
    if len(keys) == 1:
        t = data_time(keys[0])
        clock.check_closed(keys[0], t)
        if clock.is_live(t):
            return (yield from live_snapshot(context, keys[0], lambda: collect(t)))
    yield from stored_snapshots(context, asset, store, keys)
    return "imported"


def live_snapshot(
    context: AssetExecutionContext, partition_key: str, collect: Callable[[], tuple[pd.DataFrame, dict[str, Any]]]
) -> Events:
    """Run `collect` (table and metadata) and yield the output and the `collected` check."""
    with measure() as m:
        try:
            table, metadata = collect()
            error = None
        except SOURCE_ERRORS as exc:  # their messages name endpoint, status and Azure's code; ids are redacted too
            table, metadata, error = None, {}, redact(f"{type(exc).__name__}: {exc}")
    if error is not None:
        context.log.error(f"collection failed, the partition goes on without this source: {error}")
        yield Output([(partition_key, None)], metadata={"collection_failed": error, "rows": 0, **run_metadata(m)})
        yield AssetCheckResult(
            check_name=CHECK, passed=False, severity=AssetCheckSeverity.ERROR, metadata={"error": error}
        )
        return "failed"
    yield Output([(partition_key, table)], metadata={"rows": len(table), **metadata, **run_metadata(m)})
    yield AssetCheckResult(
        check_name=CHECK, passed=len(table) > 0, severity=AssetCheckSeverity.ERROR, metadata={"rows": len(table)}
    )
    return "live"


def stored_snapshots(context: AssetExecutionContext, asset: str, store: S3Store, keys: list[str]) -> Events:
    """Past partitions: Azure serves only the present, so each one's stored snapshot is imported (its own earlier
    output: a partition cannot be an input of itself). A partition whose source failed while it was live (its
    failure marker), or that was never collected (a late run), imports as None: the merge sees the source missing
    and the `collected` check fails naming them. The output is a generator the IO manager writes one partition at a
    time, so a range of any length holds one snapshot in memory."""
    partitions = PartitionStore(store)
    rows, failed, never, empty = 0, [], [], []

    def frames() -> Iterator[tuple[str, pd.DataFrame | None]]:
        nonlocal rows
        for key in keys:
            found = partitions.find(asset, key)
            if found.status == "missing":
                never.append(key)
            elif found.frame is None:
                failed.append(key)
            elif found.frame.empty:
                empty.append(key)
            rows += 0 if found.frame is None else len(found.frame)
            yield key, found.frame
            del found  # the IO manager has written it: the next partition is read without this one held

    yield Output(frames(), metadata={"imported_partitions": len(keys)})
    context.log.info(
        f"imported {len(keys)} stored snapshot(s) of {asset}, {rows} rows, {len(failed)} failed live, "
        f"{len(never)} never collected"
    )
    error = (
        f"{asset}: nothing stored for {', '.join(never[:5])}{' ...' if len(never) > 5 else ''}: Azure serves only "
        "the present, so a partition that was not collected while it was live cannot be collected now"
        if never
        else None
    )
    yield AssetCheckResult(
        check_name=CHECK,
        passed=not empty and not failed and not never,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "imported_partitions": len(keys),
            "rows": rows,
            "empty_partitions": ", ".join(empty[:10]) or "none",
            "failed_live": ", ".join(failed[:10]) or "none",
            "never_collected": ", ".join(never[:10]) or "none",
            **({"error": error} if error else {}),
        },
    )
