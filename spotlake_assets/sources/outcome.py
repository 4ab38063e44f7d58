"""How a collection asset ends: with its table, or, when Azure failed it, with no table and a failing check.

A failed source must not stop the partition (design.md: a partial snapshot is still merged and published), so
errors from Azure are caught here, logged, shown in metadata and reported by the asset's `collected` check;
the merge then sees the source as missing. Errors of our own side (S3, a partition that is not live) still fail
the step.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, Output

from resources.azure_auth import AzureCredentialsError
from resources.azure_graph import GraphCollectionError
from resources.azure_prices import PriceCollectionError
from resources.http import HttpRequestError

from ..ops.monitoring import measure, run_metadata
from ..sps.collector import SpsCollectionError

SOURCE_ERRORS = (HttpRequestError, PriceCollectionError, GraphCollectionError, AzureCredentialsError, SpsCollectionError)
CHECK = "collected"


def collected_check(asset_name: str) -> AssetCheckSpec:
    return AssetCheckSpec(CHECK, asset=asset_name, description="The source answered and gave at least one row")


def source_outputs(
    context: AssetExecutionContext, collect: Callable[[], tuple[pd.DataFrame, dict[str, Any]]]
) -> Iterator[Output | AssetCheckResult]:
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
        return
    yield Output(table, metadata={"rows": len(table), **metadata, **run_metadata(m)})
    yield AssetCheckResult(
        check_name=CHECK, passed=len(table) > 0, severity=AssetCheckSeverity.ERROR, metadata={"rows": len(table)}
    )
