"""The merged dataset: one 10-minute partition's rows, its changes, and the state it hands to the next partition."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetOut,
    BackfillPolicy,
    Failure,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    multi_asset,
)

from resources.io_manager import MissingSnapshotError, frame_from_parquet, read_frame
from resources.s3 import S3Store
from spotlake_assets.core.checks import SNAPSHOT_CHECKS, evaluate_snapshot
from spotlake_assets.core.layout import PARQUET, key_stem, raw_key_stem
from spotlake_assets.core.transforms.merge import merge_snapshot
from spotlake_assets.core.transforms.state import MergeState, state_from_frame, state_to_frame
from spotlake_assets.monitoring import measure, run_metadata

from ..partitions import (
    PARTITION_LENGTH,
    TEN_MINUTE_PARTITIONS,
    data_time,
    desired_count,
    partition_key_for_data_time,
)

RAW_SOURCES = {"price": "azure_price_raw", "eviction": "azure_eviction_raw", "sps": "azure_sps_raw"}
PREVIOUS = TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)


def load_raw(store: S3Store, asset: str, partition_key: str) -> pd.DataFrame | None:
    """A raw snapshot, or None when its source failed or was never collected for the partition."""
    try:
        return read_frame(store, raw_key_stem(asset, partition_key))
    except MissingSnapshotError:
        return None


def previous_state(store: S3Store, partition_key: str) -> MergeState | None:
    """The state left by the partition before, read from this environment's own bucket only (test must not
    continue production's history). History starts empty at the first partition of the partitions definition
    or at the first partition ever merged here (no state stored yet); after that a missing previous state is a
    gap and fails loudly, since starting over would store every series again as if new."""
    if partition_key == TEN_MINUTE_PARTITIONS.get_first_partition_key():
        return None
    previous = partition_key_for_data_time(data_time(partition_key) - PARTITION_LENGTH)
    data = store.get_from(store.write_bucket, key_stem("azure_spot_state", previous) + PARQUET)
    if data is not None:
        return state_from_frame(frame_from_parquet(data))
    if not store.has_any(state_prefix(), store.write_bucket):
        return None
    raise Failure(
        f"the state of partition {previous} is missing from s3://{store.write_bucket}, so {partition_key} cannot "
        "continue it: materialize the range from the last partition that has a state (a backfill runs a range "
        "oldest first in one run)"
    )


def snapshot_desired_count(partition_key: str, sps: pd.DataFrame | None) -> int:
    """The partition's desired count; imported legacy history keeps the count the legacy collector asked."""
    asked = set() if sps is None else set(sps["DesiredCount"].unique())
    if len(asked) == 1:
        return int(asked.pop())
    return desired_count(partition_key)


def state_prefix() -> str:
    """Key prefix of every stored state (the stem of a partition's state without its partition part)."""
    stem = key_stem("azure_spot_state", "2000-01-01-00:00")
    return stem[: stem.rindex("/") + 1]


@multi_asset(
    outs={
        "azure_spot_snapshot": AssetOut(
            description="The partition's merged rows at its desired count (the columns of the published CSV).",
            is_required=True,
        ),
        "azure_spot_changes": AssetOut(
            description="Rows that are new series or changed OndemandPrice, SpotPrice, IF, Score, T2 or T3.",
        ),
        "azure_spot_state": AssetOut(
            description="Last stored value of every series and T2/T3 of every workload, carried to the next partition.",
        ),
    },
    partitions_def=TEN_MINUTE_PARTITIONS,
    group_name="dataset",
    deps=[
        *RAW_SOURCES.values(),
        AssetDep("azure_spot_state", partition_mapping=PREVIOUS),
    ],
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=[
        AssetCheckSpec(name, asset="azure_spot_snapshot", description=text) for name, text in SNAPSHOT_CHECKS.items()
    ],
    can_subset=False,
)
def azure_spot_snapshot(context: AssetExecutionContext, store: S3Store):
    """Merge of the partition's price, IF and SPS snapshots (legacy-collector.md section 4) onto the state of the
    previous partition: T2/T3 per workload across the whole 1..50 cycle, the last stored value of every series,
    and the rows that changed. A missing source gives a partial snapshot (the `sources_complete` check fails).
    A range of partitions is processed in one run, oldest first."""
    keys = sorted(context.partition_keys)
    state = previous_state(store, keys[0])
    snapshots, changes, states, evaluations = {}, {}, {}, {}
    missing_by_partition: dict[str, list[str]] = {}
    with measure() as m:
        for key in keys:
            raw = {name: load_raw(store, asset, key) for name, asset in RAW_SOURCES.items()}
            count = snapshot_desired_count(key, raw["sps"])
            result = merge_snapshot(raw["price"], raw["eviction"], raw["sps"], count, data_time(key), state)
            state = result.state
            snapshots[key] = result.rows[result.rows["DesiredCount"] == count].reset_index(drop=True)
            changes[key] = result.changed
            states[key] = state_to_frame(state)
            missing_by_partition[key] = result.missing_sources
            evaluations[key] = evaluate_snapshot(snapshots[key], result.changed, result.counts, result.missing_sources)
            context.log.info(f"{key}: {result.counts}, missing {result.missing_sources or 'nothing'}")
    single = len(keys) == 1
    last = keys[-1]
    meta = {
        "rows": len(snapshots[last]),
        "changed_rows": len(changes[last]),
        "missing_sources": MetadataValue.json(missing_by_partition[last]),
        "partitions": len(keys),
        **run_metadata(m),
    }
    # every output depends on the previous partition's state, so the state comes first
    yield Output(
        states[last] if single else states,
        output_name="azure_spot_state",
        metadata={"series": int((states[last]["Kind"] == "series").sum())},
    )
    yield Output(snapshots[last] if single else snapshots, output_name="azure_spot_snapshot", metadata=meta)
    yield Output(
        changes[last] if single else changes,
        output_name="azure_spot_changes",
        metadata={"rows": sum(len(c) for c in changes.values())},
    )
    # In a ranged run a check stands for every partition of the range: it passes only if it passed for each.
    for name in SNAPSHOT_CHECKS:
        failed = [k for k in keys if not evaluations[k][name][0]]
        yield AssetCheckResult(
            asset_key="azure_spot_snapshot",
            check_name=name,
            passed=not failed,
            severity=AssetCheckSeverity.ERROR if name == "sources_complete" else AssetCheckSeverity.WARN,
            metadata={**evaluations[last][name][1], "failed_partitions": MetadataValue.json(failed[:20])},
        )
