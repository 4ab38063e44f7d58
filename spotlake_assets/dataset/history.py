"""The change-only time series in DynamoDB: the changed rows of each partition, plus a daily checkpoint."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, Failure, MaterializeResult, MetadataValue, asset

from resources.history_table import HistoryTable
from resources.io_manager import StoredPartitions
from resources.s3 import S3Store
from resources.state_chain import StateChain

from ..core import names
from ..core.layout import STATE_CONTINUES
from ..core.timekeys import data_time
from ..core.transforms.state import state_from_frame
from ..monitoring import measure, run_metadata
from ..partitions import ONE_RUN, Partitions


def continued_from(state: pd.DataFrame) -> str | None:
    return state.attrs.get(STATE_CONTINUES) or None


def check_still_continuous(chain: StateChain, partition_key: str, continues: str | None, run_last: str) -> None:
    """Refuse to commit a partition whose changes no longer match the stored history: another run committed a
    partition between the one it continued and itself (its changes would repeat that one's: a retry recomputes
    them), or a partition after this run's range already continued without it (only a range up to the newest
    partition can fill that gap exactly). Later partitions of this run's own range are re-committed after it."""
    newest_before = chain.newest_committed_before(partition_key)
    if (newest_before.partition if newest_before else None) != continues:
        raise Failure(
            f"partition {partition_key} was merged onto the state of {continues or 'nothing (history began)'}, "
            f"but {newest_before.partition} has been committed since: its changes are stale; a retry merges it again"
        )
    later = chain.first_committed_after(run_last)
    if later is not None and later.continues != run_last:
        raise Failure(
            f"partition {later.partition} already continued the state of {later.continues} without {run_last}: "
            f"materialize the range {partition_key} .. the newest partition in one run to fill the gap exactly"
        )


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
        context: AssetExecutionContext, history: HistoryTable, store: S3Store, changes: StoredPartitions,
        states: StoredPartitions,
    ) -> MaterializeResult:  # fmt: skip
        """Writes the partition's changed rows (new series, or a changed OndemandPrice, SpotPrice, IF, Score, T2 or
        T3) to the DynamoDB time series, keyed by series and time so a re-run rewrites the same items. At each day's
        first collection (data time 00:00) it also writes a checkpoint of every series, which bounds the query's
        "value as of the range start" lookup to one day of changes. A re-run removes the points its earlier run
        wrote and this one does not. The partition's manifest, written last, commits its state: only committed
        states are continued by later partitions (docs/design.md "Continuity"). A range is loaded oldest first, one
        partition in memory at a time."""
        chain = StateChain(store)
        written = deleted = checkpoints = 0
        skipped = []
        keys = sorted(context.partition_keys)

        def load(key: str) -> tuple[int, int, int] | None:
            """One partition's history, its frames read here and dropped on return (a range holds one at a
            time); None when the merge had nothing to merge for it."""
            rows, state = changes[key], states[key]
            if rows is None or state is None:
                return None
            continues = continued_from(state)
            check_still_continuous(chain, key, continues, keys[-1])
            t = data_time(key)
            return history.load_partition(
                store,
                key,
                rows,
                checkpoint_of=state_from_frame(state).series if (t.hour, t.minute) == (0, 0) else None,
                continues=continues,
            )

        with measure() as m:
            for key in keys:
                counts = load(key)
                if counts is None:
                    skipped.append(key)
                    continue
                written, deleted, checkpoints = written + counts[0], deleted + counts[1], checkpoints + counts[2]
        return MaterializeResult(
            metadata={
                "rows": written,
                "items_written": written,
                "stale_items_deleted": deleted,
                "checkpoint_items": checkpoints,
                "partitions_skipped": MetadataValue.json(skipped[:20]),
                "table": history.table_name,
                **run_metadata(m),
            }
        )

    return azure_dynamodb_history
