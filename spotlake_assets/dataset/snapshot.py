"""The merged dataset: one 10-minute partition's rows, its changes, and the state it hands to the next partition."""

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetMaterialization,
    AssetOut,
    AssetsDefinition,
    Failure,
    MetadataValue,
    Output,
    multi_asset,
)

from resources.continuity import ContinuityError, StateChain, refuse_out_of_order
from resources.io_manager import PartitionStore, PreviousState, Saved, StoredPartitions
from resources.s3 import S3Store

from ..core import names
from ..core.checks import SNAPSHOT_CHECKS, evaluate_snapshot
from ..core.layout import STATE_CONTINUES, STATE_CONTINUES_META, STATE_RECOVERED_META
from ..core.timekeys import data_time, desired_count, partitions_between
from ..core.transforms.merge import merge_snapshot
from ..core.transforms.state import MergeState, state_to_frame
from ..monitoring import measure, run_metadata
from ..partitions import ONE_RUN, PREVIOUS_PARTITION, Partitions

CONTINUITY = "continuity"
# How far back a merge looks for partitions to recover: uncommitted partitions whose raw snapshots this environment
# stored (a run that died or was ended after collecting them). A few: each is merged and loaded in the run's own time
# budget (it ends when its window closes), and more than a few in a row means something fails every time, which
# recovering would not fix. Older ones stay lost, named by the continuity check; a backfill fills them.
RECOVERY_LOOKBACK = 6


def snapshot_desired_count(partition_key: str, sps: pd.DataFrame | None) -> int:
    """The partition's desired count; imported legacy history keeps the count the legacy collector asked."""
    asked = set() if sps is None else set(sps["DesiredCount"].unique())
    if len(asked) == 1:
        return int(asked.pop())
    return desired_count(partition_key)


def recoverable(partitions: PartitionStore, gap: list[str]) -> list[str]:
    """The partitions of a gap (uncommitted, before the run's first partition) that a run collected before it died or
    was ended: the newest RECOVERY_LOOKBACK of them whose raw snapshots this environment stored."""
    return [key for key in gap[-RECOVERY_LOOKBACK:] if partitions.collected(key)]


@dataclass(frozen=True)
class RangeWriter:
    """Stores each partition's three outputs through the IO manager's `PartitionStore` as soon as it is merged, and
    keeps only the receipts, which the asset returns as its outputs (resources/io_manager.py): the outputs of one
    partition are computed together, and Dagster takes each output once for the whole range. Partitions recovered
    before the run's own are stored the same way but are not outputs of the run: `recovered` lists what was saved
    for them, for the materializations the asset reports."""

    partitions: PartitionStore
    run_id: str
    saved: dict[str, list[tuple[str, Saved]]] = field(
        default_factory=lambda: {names.STATE: [], names.SNAPSHOT: [], names.CHANGES: []}
    )
    recovered: list[tuple[str, str, Saved]] = field(default_factory=list)  # (asset, partition, receipt)

    def save(
        self,
        key: str,
        *,
        state: pd.DataFrame | None,
        snapshot: pd.DataFrame | None,
        changes: pd.DataFrame | None,
        state_metadata: dict[str, str] | None = None,
        output: bool = True,
    ) -> None:
        # the state first: every output of a partition depends on it
        for asset, frame in ((names.STATE, state), (names.SNAPSHOT, snapshot), (names.CHANGES, changes)):
            saved = self.partitions.save(
                asset, key, frame, self.run_id, metadata=state_metadata if asset == names.STATE else None
            )
            if output:
                self.saved[asset].append((key, saved))
            else:
                self.recovered.append((asset, key, saved))


@dataclass(frozen=True)
class Merged:
    """What the asset's metadata and checks need of a merged partition, once its frames are stored."""

    partition: str
    rows: int
    changed_rows: int
    series: int
    counts: dict[str, int]
    missing_sources: list[str]
    evaluation: dict[str, tuple[bool, dict[str, Any]]]


@dataclass
class Raw:
    """One partition's raw snapshots, read from storage once."""

    key: str
    price: pd.DataFrame | None
    eviction: pd.DataFrame | None
    sps: pd.DataFrame | None

    @classmethod
    def of_inputs(cls, key: str, price: StoredPartitions, eviction: StoredPartitions, sps: StoredPartitions) -> "Raw":
        """A partition of the run: its inputs."""
        return cls(key, price[key], eviction[key], sps[key])

    @classmethod
    def stored(cls, key: str, partitions: PartitionStore) -> "Raw":
        """A recovered partition, no input of the run: read where the IO manager stored its snapshots."""
        return cls(key, *(partitions.load(asset, key) for asset in names.RAW_SOURCES))

    def nothing_observed(self) -> bool:
        return self.price is None and self.eviction is None and self.sps is None


def merge_partition(
    raw: Raw,
    state: MergeState | None,
    continues: str | None,
    writer: RangeWriter,
    recovered: list[str] | None = None,
) -> tuple[MergeState, Merged]:
    """Merge one partition onto `state`, store its rows, changes and state; returns the state after it and what is
    left to report. Its frames are dropped on return: only the state is carried to the next partition.
    `recovered` is None for a partition recovered before the run's own (not an output of the run), else the
    partitions recovered before this one (recorded with its state for the history load and the public files)."""
    key = raw.key
    if state is None and (raw.sps is None or raw.sps.empty):
        raise Failure(
            f"partition {key} has no SPS rows and no earlier state: a history cannot begin without "
            "scores (the rows would be empty); collect a partition whose SPS source answered"
        )
    count = snapshot_desired_count(key, raw.sps)
    result = merge_snapshot(raw.price, raw.eviction, raw.sps, count, data_time(key), state)
    snapshot = result.rows[result.rows["DesiredCount"] == count].reset_index(drop=True)
    state_frame = state_to_frame(result.state)
    state_frame.attrs[STATE_CONTINUES] = continues or ""
    series = int((state_frame["Kind"] == "series").sum())
    metadata = {STATE_CONTINUES_META: continues or ""}
    if recovered:
        metadata[STATE_RECOVERED_META] = ",".join(recovered)
    writer.save(
        key,
        state=state_frame,
        snapshot=snapshot,
        changes=result.changed,
        state_metadata=metadata,
        output=recovered is not None,
    )
    done = Merged(
        partition=key,
        rows=len(snapshot),
        changed_rows=len(result.changed),
        series=series,
        counts=result.counts,
        missing_sources=result.missing_sources,
        evaluation=evaluate_snapshot(snapshot, result.changed, result.counts, result.missing_sources),
    )
    return result.state, done


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
            *(AssetCheckSpec(name, asset=names.SNAPSHOT, description=text) for name, text in SNAPSHOT_CHECKS.items()),
            AssetCheckSpec(
                CONTINUITY,
                asset=names.SNAPSHOT,
                description="The merge continued the state of the partition just before (no lost partition between)",
            ),
        ],
        can_subset=False,
    )
    def azure_spot_snapshot(
        context: AssetExecutionContext,
        store: S3Store,
        price: StoredPartitions,
        eviction: StoredPartitions,
        sps: StoredPartitions,
        previous_state: PreviousState | None,
    ):
        """Merge of the partition's price, IF and SPS snapshots (docs/contract.md "The merge") onto the newest
        committed state before it: T2/T3 per workload across the whole 1..50 cycle, the last stored value of every
        series, and the rows that changed. A missing source gives a partial snapshot (the `sources_complete` check
        fails); a partition with no source at all is skipped. An uncommitted partition just before this one whose raw
        snapshots were stored (its run died or was ended after collecting) is recovered: merged first, exactly as its
        own run would have. Partitions lost before this one (nothing collected) are named by the failing
        `continuity` check, and the changes are exact against the last stored values. A
        range of partitions is processed in one run, oldest first, each partition's rows, changes and state stored
        as soon as it is merged: a range holds one partition's state at a time, whatever its length."""
        keys = sorted(context.partition_keys)
        try:  # before anything is merged (docs/design.md "Continuity", rule 4)
            refuse_out_of_order(StateChain(store), keys[-1])
        except ContinuityError as exc:
            raise Failure(str(exc)) from None
        partitions = PartitionStore(store)
        writer = RangeWriter(partitions, context.run_id)
        continues = previous_state.partition if previous_state else None
        gap = partitions_between(continues, keys[0]) if continues else []
        # A run that died or was ended after collecting leaves its partition uncommitted: merged here, before this
        # run's own, it is not lost (docs/design.md "Continuity", rule 4).
        recovering = recoverable(partitions, gap)
        merged: list[Merged] = []  # the run's own partitions
        recovered: list[str] = []
        skipped: list[str] = []
        with measure() as m:
            state = previous_state.load() if previous_state else None
            for key in recovering + keys:
                own = key not in recovering
                raw = Raw.of_inputs(key, price, eviction, sps) if own else Raw.stored(key, partitions)
                if raw.nothing_observed():
                    # nothing was observed: no snapshot, no state; the next partition goes on from the one before
                    if own:
                        skipped.append(key)
                        writer.save(key, state=None, snapshot=None, changes=None)
                    continue
                # the run's first merged partition records what was recovered before it; a recovered one, None
                before = (list(recovered) if not merged else []) if own else None
                state, done = merge_partition(raw, state, continues, writer, recovered=before)
                del raw  # the next partition's inputs are read without this one's
                if own:
                    merged.append(done)
                else:
                    recovered.append(key)
                continues = key
                context.log.info(
                    f"{key}{'' if own else ' (recovered)'}: {done.counts}, missing {done.missing_sources or 'nothing'}"
                )
            del state
        for asset, key, saved in writer.recovered:
            context.log_event(
                AssetMaterialization(
                    asset_key=asset,
                    partition=key,
                    description=f"recovered by run {context.run_id}: merged before its partitions",
                    metadata={"rows": saved.rows, "s3_key": saved.key, "recovered_by_run": context.run_id},
                )
            )
        last = merged[-1] if merged else None
        lost = [key for key in gap if key not in recovered] + skipped
        meta = {
            "rows": last.rows if last else 0,
            "changed_rows": last.changed_rows if last else 0,
            "missing_sources": MetadataValue.json(last.missing_sources if last else ["price", "eviction", "sps"]),
            "partitions": len(keys),
            "continues_from": previous_state.partition if previous_state else "nothing (history begins)",
            "recovered_partitions": MetadataValue.json(recovered),
            "lost_partitions": MetadataValue.json(lost[:50]),
            **run_metadata(m),
        }
        # every output depends on the previous partition's state, so the state comes first
        yield Output(
            writer.saved[names.STATE], output_name=names.STATE, metadata={"series": last.series if last else 0}
        )
        yield Output(writer.saved[names.SNAPSHOT], output_name=names.SNAPSHOT, metadata=meta)
        yield Output(
            writer.saved[names.CHANGES],
            output_name=names.CHANGES,
            metadata={"rows": sum(done.changed_rows for done in merged)},
        )
        # In a ranged run a check stands for every partition of the range: it passes only if it passed for each.
        for name in SNAPSHOT_CHECKS:
            failed = [done.partition for done in merged if not done.evaluation[name][0]]
            if name == "sources_complete":
                failed = sorted(failed + skipped)
            yield AssetCheckResult(
                asset_key=names.SNAPSHOT,
                check_name=name,
                passed=not failed,
                severity=AssetCheckSeverity.ERROR if name == "sources_complete" else AssetCheckSeverity.WARN,
                metadata={
                    **(last.evaluation[name][1] if last else {"missing_sources": "price, eviction, sps"}),
                    "failed_partitions": MetadataValue.json(failed[:20]),
                },
            )
        yield AssetCheckResult(
            asset_key=names.SNAPSHOT,
            check_name=CONTINUITY,
            passed=not lost,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "lost_partitions": MetadataValue.json(lost[:50]),
                "lost_count": len(lost),
                "recovered_partitions": MetadataValue.json(recovered),
                **(
                    {
                        "error": f"{len(lost)} partition(s) lost before or in this run ({lost[0]} .. {lost[-1]}): "
                        "their changes are stored at the next merged partition; to fill them once their raw "
                        "snapshots exist, materialize the range from the first lost partition to the newest one"
                    }
                    if lost
                    else {}
                ),
            },
        )

    return azure_spot_snapshot
