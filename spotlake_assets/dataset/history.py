"""The change-only time series in DynamoDB: the changed rows of each partition, plus a daily checkpoint."""

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetMaterialization,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from resources.archive import ArchiveError, MonthArchive
from resources.archive_expiry import ExpiryGuard
from resources.clock import Clock
from resources.continuity import ContinuityError, StateChain, check_still_continuous
from resources.heartbeat import Heartbeat, HeartbeatError
from resources.history_table import HistoryTable, HistoryTableError
from resources.io_manager import PartitionStore, StoredPartitions
from resources.s3 import S3Store, S3StoreError

from ..core import names
from ..core.layout import STATE_CONTINUES
from ..core.timekeys import data_time
from ..core.transforms.state import state_from_frame
from ..monitoring import measure, run_metadata
from ..partitions import ONE_RUN, Partitions


def continued_from(state: pd.DataFrame) -> str | None:
    return state.attrs.get(STATE_CONTINUES) or None


def build_history_asset(partitions_def: Partitions) -> AssetsDefinition:
    @asset(
        name=names.HISTORY,
        partitions_def=partitions_def.ten_minutes,
        group_name="dataset",
        kinds={"dynamodb"},
        ins={"changes": AssetIn(names.CHANGES), "states": AssetIn(names.STATE)},
        backfill_policy=ONE_RUN,
    )
    def azure_dynamodb_history(
        context: AssetExecutionContext, history: HistoryTable, store: S3Store, heartbeat: Heartbeat, clock: Clock,
        changes: StoredPartitions, states: StoredPartitions,
    ) -> MaterializeResult:  # fmt: skip
        """Writes the partition's changed rows (new series, or a changed OndemandPrice, SpotPrice, IF, Score, T2 or
        T3) to the DynamoDB time series, keyed by series and time so a re-run rewrites the same items. At each day's
        first collection (data time 00:00) it also writes a checkpoint of every series, which bounds the query's
        "value as of the range start" lookup to one day of changes. A re-run removes the points its earlier run
        wrote and this one does not. The partition's manifest, written last, commits its state: only committed
        states are continued by later partitions (docs/design.md "Continuity"). Partitions the merge recovered
        before the run's own are loaded and committed first. A range is loaded oldest first, one partition in memory
        at a time. After the last commit the run puts its heartbeat, the CloudWatch metric an alarm outside Dagster
        watches, and runs the TTL guard: DynamoDB may delete items past their retention only while every month they
        can come from is archived and verified (docs/design.md "Hot and cold")."""
        chain = StateChain(store)
        partitions = PartitionStore(store)
        totals = [0, 0, 0]  # points written, stale items deleted, checkpoint items
        skipped, committed, recovered = [], [], []
        keys = sorted(context.partition_keys)

        def load(key: str, rows: pd.DataFrame, state: pd.DataFrame) -> None:
            """Commit one partition's history; its frames are dropped on return (a range holds one at a time)."""
            continues = continued_from(state)
            try:
                check_still_continuous(chain, key, continues, keys[-1])
            except ContinuityError as exc:
                raise Failure(str(exc)) from None
            t = data_time(key)
            counts = history.load_partition(
                store,
                key,
                rows,
                checkpoint_of=state_from_frame(state).series if (t.hour, t.minute) == (0, 0) else None,
                continues=continues,
            )
            committed.append(key)
            for i, count in enumerate(counts):
                totals[i] += count

        def load_recovered(before: str) -> None:
            """The partitions the merge recovered before `before`, the run's first merged partition (recorded with
            its state): no input of the run, their frames are read where the IO manager stored them."""
            for key in chain.recovered_before(before):
                rows, state = partitions.load(names.CHANGES, key), partitions.load(names.STATE, key)
                if rows is None or state is None:
                    raise Failure(f"partition {key}, recovered by the merge of this run, has no stored changes")
                load(key, rows, state)
                recovered.append(key)
                context.log_event(
                    AssetMaterialization(
                        asset_key=names.HISTORY,
                        partition=key,
                        description=f"recovered by run {context.run_id}: committed before its partitions",
                        metadata={"rows": len(rows), "recovered_by_run": context.run_id},
                    )
                )

        with measure() as m:
            for key in keys:
                rows, state = changes[key], states[key]
                if rows is None or state is None:  # the merge had nothing to merge for it
                    skipped.append(key)
                    continue
                if not committed:
                    load_recovered(key)
                load(key, rows, state)
                del rows, state
        written, deleted, checkpoints = totals
        beat = "nothing committed: none sent"
        if committed:
            try:
                heartbeat.beat(len(committed))
                beat = f"{len(committed)} sent to {heartbeat.namespace}"
            except HeartbeatError as exc:
                # the partitions are committed; the alarm outside Dagster will say that its heartbeat is missing
                context.log.error(f"heartbeat not sent: {exc}")
                beat = f"not sent: {exc}"
        try:
            guard = ExpiryGuard(MonthArchive(store, partitions_def.first_key), history).reconcile(clock.now())
        except (ArchiveError, HistoryTableError, S3StoreError) as exc:
            # committed; failing the run raises the alert, and the next run's guard tries again
            raise Failure(f"partitions {committed} are committed, but the TTL guard failed: {exc}") from exc
        return MaterializeResult(
            metadata={
                "rows": written,
                "items_written": written,
                "stale_items_deleted": deleted,
                "checkpoint_items": checkpoints,
                "partitions_skipped": MetadataValue.json(skipped[:20]),
                "recovered_partitions": MetadataValue.json(recovered),
                "heartbeat": beat,
                "ttl": f"{'enabled' if guard.enabled else 'disabled'}: {guard.reason}",
                "table": history.table_name,
                **run_metadata(m),
            }
        )

    return azure_dynamodb_history
