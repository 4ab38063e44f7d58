"""The time series in DynamoDB: exactly the changed rows of each partition, plus a daily checkpoint."""

import json

from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, MaterializeResult, asset

from resources.history_table import DynamoDBHistory
from resources.s3 import S3Store
from spotlake_assets.core.layout import key_stem
from spotlake_assets.core.transforms.state import state_from_frame
from spotlake_assets.monitoring import measure, run_metadata

from ..partitions import TEN_MINUTE_PARTITIONS, data_time
from .partitioned import by_partition


def manifest_key(partition_key: str) -> str:
    """Where the (pk, sk) of the points a partition wrote are kept, so a re-run can remove what it no longer writes."""
    return key_stem("azure_dynamodb_history", partition_key) + ".json"


def replace_points(history: DynamoDBHistory, store: S3Store, partition_key: str, rows) -> tuple[int, int]:  # noqa: ANN001
    """Write the partition's points, then delete those an earlier run of it wrote and this one does not (a
    re-collected or re-merged partition must not leave stale points). Returns (written, deleted)."""
    previous = store.get_from(store.write_bucket, manifest_key(partition_key))
    keys = history.write_points(rows)
    stale = set(map(tuple, json.loads(previous))) - set(keys) if previous else set()
    deleted = history.delete_points(sorted(stale))
    store.put(manifest_key(partition_key), json.dumps(sorted(keys)).encode(), content_type="application/json")
    return len(keys), deleted


@asset(
    partitions_def=TEN_MINUTE_PARTITIONS,
    group_name="dataset",
    kinds={"dynamodb"},
    ins={"azure_spot_changes": AssetIn(), "azure_spot_state": AssetIn()},
    backfill_policy=BackfillPolicy.single_run(),
)
def azure_dynamodb_history(
    context: AssetExecutionContext, history: DynamoDBHistory, store: S3Store, azure_spot_changes, azure_spot_state
) -> MaterializeResult:
    """Writes the partition's changed rows (new series, or a changed OndemandPrice, SpotPrice, IF, Score, T2 or T3)
    to the DynamoDB time series, keyed by series and time so a re-run rewrites the same items. At each day's
    first collection (data time 00:00) it also writes a checkpoint of every series, which bounds the query's
    "value as of the range start" lookup to one day of changes. A re-run removes the points its earlier run wrote
    and this one does not."""
    keys = sorted(context.partition_keys)
    changes = by_partition(azure_spot_changes, keys)
    states = by_partition(azure_spot_state, keys)
    written = deleted = checkpoints = 0
    with measure() as m:
        for key in keys:
            w, d = replace_points(history, store, key, changes[key])
            written, deleted = written + w, deleted + d
            t = data_time(key)
            if (t.hour, t.minute) == (0, 0):
                checkpoints += history.write_checkpoint(state_from_frame(states[key]).series, t)
    return MaterializeResult(
        metadata={
            "rows": written,
            "items_written": written,
            "stale_items_deleted": deleted,
            "checkpoint_items": checkpoints,
            "table": history.table_name,
            **run_metadata(m),
        }
    )
