"""Spot and on-demand prices from the Azure Retail Prices API."""

from dagster import AssetExecutionContext, BackfillPolicy, MetadataValue, asset

from resources.azure import AzureResource
from resources.clock import Clock
from resources.s3 import S3Store
from spotlake_assets.core.transforms.price import clean_prices

from ..partitions import TEN_MINUTE_PARTITIONS
from .outcome import collected_check, raw_outputs


@asset(
    partitions_def=TEN_MINUTE_PARTITIONS,
    group_name="collect",
    kinds={"azure", "pandas"},
    check_specs=[collected_check("azure_price_raw")],
    backfill_policy=BackfillPolicy.single_run(),
)
def azure_price_raw(context: AssetExecutionContext, azure: AzureResource, clock: Clock, store: S3Store):
    """Linux spot and on-demand prices of every VM size in every public region, one row per
    (InstanceTier, InstanceType, Region), as in force at the partition's data time (the end of its window).

    Windows, Low Priority, Expired meters and sovereign clouds are left out; the spot price is joined to
    the on-demand price of the same meter case-insensitively; Savings is the spot discount in percent.
    Collected live for the partition that has just closed; past partitions import their stored snapshot.
    """

    def collect(t):
        http = azure.http()
        fetched = azure.prices_client(http).fetch_all()
        table = clean_prices(fetched.items, t)
        return table, {
            "rows_with_ondemand": int(table["OndemandPrice"].notna().sum()),
            "items": fetched.items_seen,
            "items_kept": len(fetched.items),
            "pages": fetched.pages,
            "retries": http.retries,
            "data_time": MetadataValue.timestamp(t),
        }

    yield from raw_outputs(context, "azure_price_raw", store, clock, collect)
