"""The time series in DynamoDB: exactly the changed rows of each partition, plus a daily checkpoint."""

from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, MaterializeResult, asset

from resources.dynamodb import DynamoDBHistory

from ..ops.monitoring import measure, run_metadata
from ..partitions import TEN_MINUTE_PARTITIONS, data_time
from ..transforms.state import state_from_frame
from .partitioned import by_partition


@asset(
    partitions_def=TEN_MINUTE_PARTITIONS,
    group_name="dataset",
    kinds={"dynamodb"},
    ins={"azure_spot_changes": AssetIn(), "azure_spot_state": AssetIn()},
    backfill_policy=BackfillPolicy.single_run(),
)
def azure_dynamodb_history(
    context: AssetExecutionContext, history: DynamoDBHistory, azure_spot_changes, azure_spot_state
) -> MaterializeResult:
    """Writes the partition's changed rows (new series, or a changed OndemandPrice, SpotPrice, IF, Score, T2 or T3)
    to the DynamoDB time series, keyed by series and time so a re-run rewrites the same items. At each day's
    first collection (data time 00:00) it also writes a checkpoint of every series, which bounds the query's
    "value as of the range start" lookup to one day of changes."""
    keys = sorted(context.partition_keys)
    changes = by_partition(azure_spot_changes, keys)
    states = by_partition(azure_spot_state, keys)
    written = checkpoints = 0
    with measure() as m:
        for key in keys:
            written += history.write_rows(changes[key])
            t = data_time(key)
            if (t.hour, t.minute) == (0, 0):
                checkpoints += history.write_checkpoint(state_from_frame(states[key]).series, t)
    return MaterializeResult(
        metadata={
            "rows": written,
            "items_written": written,
            "checkpoint_items": checkpoints,
            "table": history.table_name,
            **run_metadata(m),
        }
    )
