"""S3 key layout of every stored object, in the legacy layout (legacy-collector.md section 5).

Keys are stems without extension: new files add `.parquet`, legacy imports read `.pkl.gz`.
"""

from __future__ import annotations

from datetime import datetime

from .timekeys import data_time, desired_count

# asset name -> key template; {t:...} is the partition's data time (end of its window)
RAW_KEY_TEMPLATES: dict[str, str] = {
    "azure_price_raw": "rawdata/azure/spot_price/{t:%Y/%m/%d}/{t:%H-%M}_spot_price",
    "azure_eviction_raw": "rawdata/azure/spot_if/{t:%Y/%m/%d}/{t:%H-%M}_spot_if",
    "azure_sps_raw": "rawdata/azure/sps/{t:%Y/%m/%d}/{t:%H-%M}_sps_{desired_count}",
}

PARQUET = ".parquet"
LEGACY_PICKLE = ".pkl.gz"


def raw_key_stem(asset_name: str, partition_key: str) -> str:
    """Key stem of a raw 10-minute snapshot, e.g. rawdata/azure/spot_price/2026/11/28/10-20_spot_price."""
    try:
        template = RAW_KEY_TEMPLATES[asset_name]
    except KeyError:
        raise KeyError(f"no S3 key layout for asset {asset_name!r}") from None
    t: datetime = data_time(partition_key)
    return template.format(t=t, desired_count=desired_count(partition_key))


# prefix of every asset that has no legacy layout (merged snapshots, request pools, ...)
DAGSTER_PREFIX = "dagster/azure"


def key_stem(asset_name: str, partition_key: str | None) -> str:
    """Key stem of any asset's stored output.

    Raw snapshots keep the legacy layout (raw_key_stem) so that legacy history sits beside new files; every
    other asset lives under dagster/azure/{asset_name}/{partition key, ':' -> '-', or 'all' when
    unpartitioned}.
    """
    if asset_name in RAW_KEY_TEMPLATES:
        if partition_key is None:
            raise ValueError(f"raw asset {asset_name!r} is partitioned: its key needs a partition key")
        return raw_key_stem(asset_name, partition_key)
    return f"{DAGSTER_PREFIX}/{asset_name}/{(partition_key or 'all').replace(':', '-')}"


# Public outputs (legacy keys, public-read) and the marker that keeps a backfill from overwriting newer latest data.
LATEST_JSON_KEY = "latest_data/latest_azure.json"
LATEST_MARKER_KEY = "latest_data/azure/latest_azure_time.json"
QUERY_SELECTOR_KEY = "query-selector/azure/query_selector.json"
# The web site's query form reads its instance and region lists here (docs/web-site.md).
ASSOCIATION_KEY = "query-selector/associated/association_azure.json"


def public_csv_key(partition_key: str) -> str:
    """rawdata/azure/YYYY/MM/DD/HH-MM-SS.csv.gz of a partition's data time."""
    return f"rawdata/azure/{data_time(partition_key):%Y/%m/%d/%H-%M-%S}.csv.gz"
