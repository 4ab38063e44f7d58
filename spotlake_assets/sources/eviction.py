"""Interruption frequency (IF) from Azure Resource Graph spot eviction rates."""


import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from resources.azure import AzureResource
from resources.clock import Clock

from ..partitions import TEN_MINUTE_PARTITIONS, data_time
from ..transforms.eviction import clean_eviction
from ..ops.monitoring import measure, run_metadata


@asset(partitions_def=TEN_MINUTE_PARTITIONS, group_name="collect", kinds={"azure", "pandas"})
def azure_eviction_raw(context: AssetExecutionContext, azure: AzureResource, clock: Clock) -> Output[pd.DataFrame]:
    """Interruption frequency of every (region, size) Azure reports a spot eviction rate for, as IF
    (0-5% -> 3.0, 5-10% -> 2.5, 10-15% -> 2.0, 15-20% -> 1.5, 20+% -> 1.0; higher is better).

    Tier and type keep Azure Resource Graph's lower-case spelling; joins elsewhere are case-insensitive.
    Sovereign clouds are left out; unknown rate strings are dropped and counted in `unknown_rates`.
    """
    key = context.partition_key
    t = data_time(key)
    clock.check_live(key, t)
    with measure() as m:
        http = azure.http()
        fetched = azure.graph_client(http).eviction_rates()
        table, unknown = clean_eviction(fetched.rows)
    return Output(
        table,
        metadata={
            "rows": len(table),
            "source_rows": len(fetched.rows),
            "unknown_rates": unknown,
            "pages": fetched.pages,
            "retries": http.retries,
            "data_time": MetadataValue.timestamp(t),
            **run_metadata(m),
        },
    )
