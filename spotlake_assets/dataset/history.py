"""The change-only time series in DynamoDB: the changed rows of each partition, plus a daily checkpoint."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, Failure, MaterializeResult, asset

from resources.history_table import HistoryTable
from resources.io_manager import StoredPartitions
from resources.s3 import S3Store

from ..core import names
from ..core.timekeys import data_time
from ..core.transforms.state import state_from_frame
from ..monitoring import measure, run_metadata
from ..partitions import ONE_RUN, Partitions


def required(frames: StoredPartitions, asset: str, key: str) -> pd.DataFrame:
    frame = frames[key]
    if frame is None:
        raise Failure(f"{asset} of partition {key} is not stored; materialize {names.SNAPSHOT} for it first")
    return frame


def build_history_asset(partitions: Partitions) -> AssetsDefinition:
    @asset(
        name=names.HISTORY,
        partitions_def=partitions.ten_minutes,
        group_name="dataset",
        kinds={"dynamodb"},
        ins={"changes": AssetIn(names.CHANGES), "states": AssetIn(names.STATE)},
        backfill_policy=ONE_RUN,
    )
    def azure_dynamodb_history(
        context: AssetExecutionContext,
        history: HistoryTable,
        store: S3Store,
        changes: StoredPartitions,
        states: StoredPartitions,
    ) -> MaterializeResult:
        """Writes the partition's changed rows (new series, or a changed OndemandPrice, SpotPrice, IF, Score, T2 or
        T3) to the DynamoDB time series, keyed by series and time so a re-run rewrites the same items. At each day's
        first collection (data time 00:00) it also writes a checkpoint of every series, which bounds the query's
        "value as of the range start" lookup to one day of changes. A re-run removes the points its earlier run
        wrote and this one does not."""
        keys = sorted(context.partition_keys)
        written = deleted = checkpoints = 0
        with measure() as m:
            for key in keys:
                w, d = history.replace_partition_points(store, key, required(changes, names.CHANGES, key))
                written, deleted = written + w, deleted + d
                t = data_time(key)
                if (t.hour, t.minute) == (0, 0):
                    state = state_from_frame(required(states, names.STATE, key))
                    checkpoints += history.write_checkpoint(state.series, t)
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

    return azure_dynamodb_history
