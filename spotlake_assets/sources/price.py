"""Spot and on-demand prices from the Azure Retail Prices API."""

from dagster import AssetExecutionContext, AssetsDefinition, MetadataValue

from resources.azure import AzureResource
from resources.azure_prices import PriceCollectionError
from resources.clock import Clock
from resources.s3 import S3Store

from ..core import names
from ..core.transforms.price import clean_prices
from ..partitions import Partitions
from .collection import raw_snapshot, source_asset


def build_price_asset(partitions: Partitions) -> AssetsDefinition:
    @source_asset(names.PRICE_RAW, partitions)
    def azure_price_raw(context: AssetExecutionContext, azure: AzureResource, clock: Clock, store: S3Store):
        """Linux spot and on-demand prices of every VM size in every public region, one row per
        (InstanceTier, InstanceType, Region), as in force at the partition's data time (the end of its window).

        Windows, Low Priority, Expired meters and sovereign clouds are left out; the spot price is joined to
        the on-demand price of the same meter case-insensitively; Savings is the spot discount in percent.
        """

        def collect(t):
            http = azure.http()
            client = azure.prices_client(http)
            fetched = client.fetch_all()
            if fetched.rejections.too_many():
                raise PriceCollectionError(f"GET {client.url}: items {fetched.rejections.summary()}")
            table = clean_prices(fetched.items, t)
            if table.empty:
                raise PriceCollectionError(
                    f"GET {client.url}: {fetched.items_seen} items served, no spot price among them"
                )
            return table, {
                "rows_with_ondemand": int(table["OndemandPrice"].notna().sum()),
                "items": fetched.items_seen,
                "items_kept": len(fetched.items),
                "pages": fetched.pages,
                "requests": fetched.requests,
                "retries": http.retries,
                "items_rejected": fetched.rejections.rejected,
                "rejected_because": MetadataValue.json(dict(fetched.rejections.reasons.most_common(10))),
                "data_time": MetadataValue.timestamp(t),
            }

        yield from raw_snapshot(context, names.PRICE_RAW, store, clock, collect)

    return azure_price_raw
