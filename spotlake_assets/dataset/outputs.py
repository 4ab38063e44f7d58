"""The public files the SpotLake web site and researchers read (legacy keys, public-read)."""

import json

from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, MaterializeResult, MetadataValue, asset

from resources.s3 import PreconditionFailed, S3Store
from spotlake_assets.core.layout import LATEST_JSON_KEY, LATEST_MARKER_KEY, QUERY_SELECTOR_KEY, public_csv_key
from spotlake_assets.core.transforms.outputs import latest_json, merge_selector, snapshot_csv_gz
from spotlake_assets.core.transforms.state import state_from_frame
from spotlake_assets.monitoring import measure, run_metadata

from ..partitions import TEN_MINUTE_PARTITIONS, data_time, format_time
from .partitioned import by_partition

JSON = "application/json"
SELECTOR_WRITE_ATTEMPTS = 10


def update_selector(store: S3Store, rows) -> int:  # noqa: ANN001 - a DataFrame
    """Add the rows' (tier, type, region) to the selector; a conditional write keeps concurrent runs from
    dropping each other's additions. Returns how many entries were new."""
    for _ in range(SELECTOR_WRITE_ATTEMPTS):
        existing, etag = store.get_for_update(QUERY_SELECTOR_KEY)
        body, added = merge_selector(existing, rows)
        if existing is not None and added == 0 and etag is not None:
            return 0
        try:
            store.put(
                QUERY_SELECTOR_KEY, body, content_type=JSON, public=True, if_none_match=etag is None, if_match=etag
            )
            return added
        except PreconditionFailed:
            continue
    raise RuntimeError(f"query selector {QUERY_SELECTOR_KEY}: still conflicting after {SELECTOR_WRITE_ATTEMPTS} tries")


def newer_than_published(store: S3Store, time: str) -> bool:
    """Whether `time` is at least the data time of the published latest file (a backfill must not roll it back);
    this environment's own marker only."""
    marker = store.get_from(store.write_bucket, LATEST_MARKER_KEY)
    return marker is None or json.loads(marker)["data_time"] <= time


@asset(
    partitions_def=TEN_MINUTE_PARTITIONS,
    group_name="publish",
    kinds={"s3"},
    ins={"azure_spot_snapshot": AssetIn(), "azure_spot_state": AssetIn()},
    backfill_policy=BackfillPolicy.single_run(),
)
def azure_public_outputs(
    context: AssetExecutionContext, store: S3Store, azure_spot_snapshot, azure_spot_state
) -> MaterializeResult:
    """Publishes, public-read: the partition's merged rows as `rawdata/azure/YYYY/MM/DD/HH-MM-SS.csv.gz`; the last
    known row of every series at desired count 1 as `latest_data/latest_azure.json` (only when no newer partition
    has published it); and the distinct (tier, type, region) ever seen in `query-selector/azure/query_selector.json`."""
    keys = sorted(context.partition_keys)
    snapshots = by_partition(azure_spot_snapshot, keys)
    written = []
    with measure() as m:
        for key in keys:
            store.put(
                public_csv_key(key), snapshot_csv_gz(snapshots[key]), content_type="application/gzip", public=True
            )
            written.append(public_csv_key(key))
        added = sum(update_selector(store, snapshots[key]) for key in keys)
        newest = keys[-1]
        time = format_time(data_time(newest))
        latest = newer_than_published(store, time)
        if latest:
            state = state_from_frame(by_partition(azure_spot_state, keys)[newest])
            store.put(LATEST_JSON_KEY, latest_json(state), content_type=JSON, public=True)
            store.put(LATEST_MARKER_KEY, json.dumps({"data_time": time}).encode(), content_type=JSON)
            written.append(LATEST_JSON_KEY)
    return MaterializeResult(
        metadata={
            "rows": sum(len(s) for s in snapshots.values()),
            "keys_written": MetadataValue.json(written[-20:]),
            "latest_published": latest,
            "selector_entries_added": added,
            **run_metadata(m),
        }
    )
