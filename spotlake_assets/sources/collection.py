"""How a raw snapshot asset runs: collected live from Azure for the partition that has just closed, imported from
storage for past partitions (and for a range of them in one run, in a backfill).

A failed source must not stop the partition (a partial snapshot is still merged and published, docs/design.md
"Missing sources"), so errors from Azure are caught here, logged, shown in metadata and reported by the asset's
`collected` check; the IO manager stores a failure marker and the merge sees the source as missing. Errors of our
own side (S3, a partition that has not closed yet) still fail the step.

**Only the newest partition can be collected.** A run of a past partition (an operator's, from the UI or the CLI)
imports what was stored for it. When nothing at all is stored for it (no snapshot, no failure marker of any source,
no imported legacy snapshot), there is nothing to import and Azure cannot be asked about the past: the raw assets
refuse it with a Failure before they write anything, so its run ends FAILED, not green with nothing collected, and
the partition stays a visible gap that an import can still fill (docs/operations.md "Past partitions").
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Iterator
from datetime import datetime
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
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
# What every raw asset's description says (the UI shows it): which partitions a run can collect.
COLLECTABLE = (
    "Only the newest partition can be collected live, while its window is open (Azure serves only the present); "
    "a past partition imports its stored snapshot, for example one imported from legacy history (spotlake "
    "import-legacy), and a run of a past partition with nothing stored fails: it can no longer be collected."
)

Collect = Callable[[datetime], tuple[pd.DataFrame, dict[str, Any]]]
Events = Generator[Output | AssetCheckResult, None, str]


def source_asset(name: str, partitions: Partitions, check_specs: tuple[AssetCheckSpec, ...] = (), **kwargs: Any):
    """The decorator of a raw snapshot asset: 10-minute partitions, its `collected` check, one run per backfill."""
    collected = AssetCheckSpec(CHECK, asset=name, description="The source answered and gave at least one row")

    def decorate(fn: Callable[..., Any]):
        # the description the UI shows: the function's docstring, then which partitions can be collected
        doc = inspect.cleandoc(fn.__doc__ or "")
        return asset(
            name=name,
            partitions_def=partitions.ten_minutes,
            group_name="collect",
            kinds={"azure", "pandas"},
            check_specs=[collected, *check_specs],
            backfill_policy=ONE_RUN,
            description=f"{doc}\n\n{COLLECTABLE}",
            **kwargs,
        )(fn)

    return decorate


def raw_snapshot(context: AssetExecutionContext, asset: str, store: S3Store, clock: Clock, collect: Collect) -> Events:
    """Yield the asset's output and `collected` check; returns "live", "failed" or "imported"."""
    keys = sorted(context.partition_keys)
    if len(keys) == 1:
        t = data_time(keys[0])
        clock.check_closed(keys[0], t)
        if clock.is_live(t):
            return (yield from live_snapshot(context, keys[0], lambda: collect(t)))
    refuse_if_nothing_to_import(store, clock, keys)
    yield from stored_snapshots(context, asset, store, keys)
    return "imported"


def refuse_if_nothing_to_import(store: S3Store, clock: Clock, keys: list[str]) -> None:
    """Fail a run of past partitions none of which has anything stored (of any raw source, in any bucket this
    environment reads): Azure cannot be asked about the past and there is nothing to import. Raised before any
    write, by each raw asset alike (they ask the same question), so the run ends FAILED and leaves nothing behind.
    A range with some partitions stored goes on: its never-collected ones are reported by the `collected` check."""
    partitions = PartitionStore(store)
    if any(partitions.anything_to_import(key) for key in keys):
        return
    first, last = keys[0], keys[-1]
    closed = clock.live_until(data_time(last))
    late = (clock.now() - closed).total_seconds() / 60
    one = first == last
    what, it = (f"partition {first}", "it") if one else (f"partitions {first} to {last}", "them")
    raise Failure(
        description=f"{what} can no longer be collected: {'its' if one else 'the last'} window closed at "
        f"{closed:%Y-%m-%d %H:%M} UTC ({late:.0f} min ago) and Azure serves only the present, so only the newest "
        f"partition can be collected, while its window is open; nothing of {it} is stored to import. To backfill "
        f"{it}, import {'its legacy snapshot' if one else 'their legacy snapshots'} first (spotlake import-legacy), "
        "then materialize again.",
        allow_retries=False,
    )


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
