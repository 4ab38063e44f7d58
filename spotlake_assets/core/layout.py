"""Where every stored object lives: the S3 key layout, in one place (docs/contract.md "Stored objects").

Raw snapshots keep the legacy collector's keys (with `.parquet` instead of `.pkl.gz`), so that imported legacy
history sits beside new files; public files keep their legacy keys; everything else lives under
`dagster/azure/{asset}/{partition key}`. Only this module and the IO manager turn names into keys.
"""

from __future__ import annotations

from . import names
from .timekeys import data_time, desired_count

PARQUET = ".parquet"
LEGACY_PICKLE = ".pkl.gz"
FAILURE_MARKER = ".failed.json"

# asset name -> key template; {t:...} is the partition's data time (the end of its window)
RAW_KEY_TEMPLATES: dict[str, str] = {
    names.PRICE_RAW: "rawdata/azure/spot_price/{t:%Y/%m/%d}/{t:%H-%M}_spot_price",
    names.EVICTION_RAW: "rawdata/azure/spot_if/{t:%Y/%m/%d}/{t:%H-%M}_spot_if",
    names.SPS_RAW: "rawdata/azure/sps/{t:%Y/%m/%d}/{t:%H-%M}_sps_{desired_count}",
}

# prefix of every asset without a legacy layout (merged snapshots, states, request pools, history manifests)
DAGSTER_PREFIX = "dagster/azure"

# Public files (legacy keys, public-read) and the marker that keeps a backfill from rolling the latest file back.
LATEST_JSON_KEY = "latest_data/latest_azure.json"
LATEST_MARKER_KEY = "latest_data/azure/latest_azure_time.json"
QUERY_SELECTOR_KEY = "query-selector/azure/query_selector.json"
# The web site's query form reads its instance and region lists here (docs/web-site.md).
ASSOCIATION_KEY = "query-selector/associated/association_azure.json"

# Metadata of a stored state (Parquet key-value metadata, pandas `attrs`): the partition whose state its merge
# continued (empty: the history began there). The history load copies it into the partition's commit.
STATE_CONTINUES = "spotlake.continues"
# User metadata of a stored state object (S3 x-amz-meta-*, read with one HEAD): the partition its merge continued,
# and, on the first partition a run merged, the earlier partitions that run recovered before it (docs/design.md
# "Continuity", rule 4): the history load and the public files take those first.
STATE_CONTINUES_META = "continues"
STATE_RECOVERED_META = "recovered"

# The SPS rotation state and learned lists (one JSON object; legacy kept several files under this prefix).
ROTATION_STATE_KEY = "sps-collector/azure/saved_variable/availability-zones-true/rotation_state.json"


def raw_key_stem(asset_name: str, partition_key: str) -> str:
    """Key stem of a raw 10-minute snapshot, e.g. rawdata/azure/spot_price/2026/11/28/10-20_spot_price."""
    try:
        template = RAW_KEY_TEMPLATES[asset_name]
    except KeyError:
        raise KeyError(f"no raw snapshot layout for asset {asset_name!r}") from None
    return template.format(t=data_time(partition_key), desired_count=desired_count(partition_key))


def raw_stems_any_count(partition_key: str) -> str:
    """Key prefix of the SPS snapshot of a partition's time whatever desired count it holds (imported legacy
    history asked other counts than ours)."""
    stem = raw_key_stem(names.SPS_RAW, partition_key)
    return stem[: stem.rindex("_") + 1]


def sps_frame_key(partition_key: str, desired_count: int) -> str:
    """The SPS snapshot of a partition's time at a given desired count (imported legacy history)."""
    return f"{raw_stems_any_count(partition_key)}{desired_count}{PARQUET}"


def legacy_pickle_key(asset_name: str, partition_key: str) -> str:
    """Where the legacy collector kept a raw snapshot of a partition's time (read by the offline import only)."""
    return raw_key_stem(asset_name, partition_key) + LEGACY_PICKLE


def key_stem(asset_name: str, partition_key: str | None) -> str:
    """Key stem of any asset's stored output: the legacy layout for raw snapshots, else
    dagster/azure/{asset}/{partition key with ':' -> '-', or 'all' when unpartitioned}."""
    if asset_name in RAW_KEY_TEMPLATES:
        if partition_key is None:
            raise ValueError(f"raw asset {asset_name!r} is partitioned: its key needs a partition key")
        return raw_key_stem(asset_name, partition_key)
    return f"{DAGSTER_PREFIX}/{asset_name}/{(partition_key or 'all').replace(':', '-')}"


def frame_key(asset_name: str, partition_key: str | None) -> str:
    """The Parquet object of an asset's partition."""
    return key_stem(asset_name, partition_key) + PARQUET


def failure_marker_key(asset_name: str, partition_key: str) -> str:
    """Stored instead of a frame when a partition's source failed while it was live, so a later import tells
    "failed then" from "never collected"."""
    return key_stem(asset_name, partition_key) + FAILURE_MARKER


def asset_prefix(asset_name: str) -> str:
    """Key prefix of every partition of a non-raw asset (e.g. every stored state)."""
    if asset_name in RAW_KEY_TEMPLATES:
        raise ValueError(f"raw asset {asset_name!r} is filed by time, not under one prefix")
    return f"{DAGSTER_PREFIX}/{asset_name}/"


def history_manifest_key(partition_key: str) -> str:
    """The (pk, sk) of the DynamoDB points a partition wrote, so a re-run can remove what it no longer writes."""
    return key_stem(names.HISTORY, partition_key) + ".json"



def public_csv_key(partition_key: str) -> str:
    """rawdata/azure/YYYY/MM/DD/HH-MM-SS.csv.gz of a partition's data time."""
    return f"rawdata/azure/{data_time(partition_key):%Y/%m/%d/%H-%M-%S}.csv.gz"
