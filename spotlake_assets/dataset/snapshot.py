"""The merged dataset: one 10-minute partition's rows, its changes, and the state it hands to the next partition."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    AssetsDefinition,
    MetadataValue,
    Output,
    multi_asset,
)

from resources.io_manager import StoredPartitions

from ..core import names
from ..core.checks import SNAPSHOT_CHECKS, evaluate_snapshot
from ..core.timekeys import data_time, desired_count
from ..core.transforms.merge import merge_snapshot
from ..core.transforms.state import MergeState, state_to_frame
from ..monitoring import measure, run_metadata
from ..partitions import ONE_RUN, PREVIOUS_PARTITION, Partitions


def snapshot_desired_count(partition_key: str, sps: pd.DataFrame | None) -> int:
    """The partition's desired count; imported legacy history keeps the count the legacy collector asked."""
    asked = set() if sps is None else set(sps["DesiredCount"].unique())
    if len(asked) == 1:
        return int(asked.pop())
    return desired_count(partition_key)


def build_snapshot_asset(partitions: Partitions) -> AssetsDefinition:
    @multi_asset(
        outs={
            names.SNAPSHOT: AssetOut(
                description="The partition's merged rows at its desired count (the columns of the published CSV).",
                is_required=True,
            ),
            names.CHANGES: AssetOut(
                description="Rows that are new series or changed OndemandPrice, SpotPrice, IF, Score, T2 or T3.",
            ),
            names.STATE: AssetOut(
                description="Last stored value of every series and T2/T3 of every workload, carried to the next "
                "partition.",
            ),
        },
        ins={
            "price": AssetIn(names.PRICE_RAW),
            "eviction": AssetIn(names.EVICTION_RAW),
            "sps": AssetIn(names.SPS_RAW),
            "previous_state": AssetIn(
                names.STATE, partition_mapping=PREVIOUS_PARTITION, input_manager_key="previous_state_loader"
            ),
        },
        partitions_def=partitions.ten_minutes,
        group_name="dataset",
        backfill_policy=ONE_RUN,
        check_specs=[
            AssetCheckSpec(name, asset=names.SNAPSHOT, description=text) for name, text in SNAPSHOT_CHECKS.items()
        ],
        can_subset=False,
    )
    def azure_spot_snapshot(
        context: AssetExecutionContext,
        price: StoredPartitions,
        eviction: StoredPartitions,
        sps: StoredPartitions,
        previous_state: MergeState | None,
    ):
        """Merge of the partition's price, IF and SPS snapshots (docs/contract.md "Merge") onto the state of the
        previous partition: T2/T3 per workload across the whole 1..50 cycle, the last stored value of every series,
        and the rows that changed. A missing source gives a partial snapshot (the `sources_complete` check fails).
        A range of partitions is processed in one run, oldest first."""
        keys = sorted(context.partition_keys)
        state = previous_state
        snapshots, changes, states, evaluations = {}, {}, {}, {}
        missing_by_partition: dict[str, list[str]] = {}
        with measure() as m:
            for key in keys:
                raw = {"price": price[key], "eviction": eviction[key], "sps": sps[key]}
                count = snapshot_desired_count(key, raw["sps"])
                result = merge_snapshot(raw["price"], raw["eviction"], raw["sps"], count, data_time(key), state)
                state = result.state
                snapshots[key] = result.rows[result.rows["DesiredCount"] == count].reset_index(drop=True)
                changes[key] = result.changed
                states[key] = state_to_frame(state)
                missing_by_partition[key] = result.missing_sources
                evaluations[key] = evaluate_snapshot(
                    snapshots[key], result.changed, result.counts, result.missing_sources
                )
                context.log.info(f"{key}: {result.counts}, missing {result.missing_sources or 'nothing'}")
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
            list(states.items()),
            output_name=names.STATE,
            metadata={"series": int((states[last]["Kind"] == "series").sum())},
        )
        yield Output(list(snapshots.items()), output_name=names.SNAPSHOT, metadata=meta)
        yield Output(
            list(changes.items()),
            output_name=names.CHANGES,
            metadata={"rows": sum(len(c) for c in changes.values())},
        )
        # In a ranged run a check stands for every partition of the range: it passes only if it passed for each.
        for name in SNAPSHOT_CHECKS:
            failed = [k for k in keys if not evaluations[k][name][0]]
            yield AssetCheckResult(
                asset_key=names.SNAPSHOT,
                check_name=name,
                passed=not failed,
                severity=AssetCheckSeverity.ERROR if name == "sources_complete" else AssetCheckSeverity.WARN,
                metadata={**evaluations[last][name][1], "failed_partitions": MetadataValue.json(failed[:20])},
            )

    return azure_spot_snapshot
