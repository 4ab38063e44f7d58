"""Interruption frequency (IF) from Azure Resource Graph spot eviction rates."""

from dagster import AssetExecutionContext, AssetsDefinition, MetadataValue

from resources.azure import AzureResource
from resources.azure_graph import GraphCollectionError
from resources.clock import Clock
from resources.s3 import S3Store

from ..core import names
from ..core.transforms.eviction import clean_eviction
from ..partitions import Partitions
from .collection import raw_snapshot, source_asset


def build_eviction_asset(partitions: Partitions) -> AssetsDefinition:
    @source_asset(names.EVICTION_RAW, partitions)
    def azure_eviction_raw(context: AssetExecutionContext, azure: AzureResource, clock: Clock, store: S3Store):
        """Interruption frequency of every (region, size) Azure reports a spot eviction rate for, as IF
        (0-5% -> 3.0, 5-10% -> 2.5, 10-15% -> 2.0, 15-20% -> 1.5, 20+% -> 1.0; higher is better).

        Tier and type keep Azure Resource Graph's lower-case spelling; joins elsewhere are case-insensitive.
        Sovereign clouds are left out; unknown rate strings are dropped and counted in `unknown_rates`.
        """

        def collect(t):
            http = azure.http()
            client = azure.graph_client(http)
            fetched = client.eviction_rates()
            table, unknown = clean_eviction(fetched.rows)
            rejections = fetched.rejections
            rejections.reasons.update({"evictionRate unknown": unknown} if unknown else {})
            if rejections.too_many():
                raise GraphCollectionError(f"{client.endpoint}: rows {rejections.summary()}")
            if table.empty:
                raise GraphCollectionError(f"{client.endpoint}: {len(fetched.rows)} rows, none of a public region")
            return table, {
                "source_rows": len(fetched.rows),
                "unknown_rates": unknown,
                "pages": fetched.pages,
                "total_records": fetched.total_records,
                "passes": fetched.passes,
                "retries": http.retries,
                "rows_rejected": fetched.rejections.rejected,
                "rejected_because": MetadataValue.json(dict(fetched.rejections.reasons.most_common(10))),
                "data_time": MetadataValue.timestamp(t),
            }

        yield from raw_snapshot(context, names.EVICTION_RAW, store, clock, collect)

    return azure_eviction_raw
