"""The public files the SpotLake web site and researchers read (legacy keys, public-read)."""

from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetMaterialization,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from resources.continuity import StateChain
from resources.io_manager import PartitionStore, StoredPartitions
from resources.public_files import MIN_LATEST_SHARE, PublicFiles
from resources.s3 import S3Store

from ..core import names
from ..core.layout import LATEST_JSON_KEY
from ..core.transforms.state import state_from_frame
from ..monitoring import measure, run_metadata
from ..partitions import ONE_RUN, Partitions

LATEST_CHECK = "latest_file"


def build_outputs_asset(partitions: Partitions) -> AssetsDefinition:
    @asset(
        name=names.PUBLIC_OUTPUTS,
        partitions_def=partitions.ten_minutes,
        group_name="publish",
        kinds={"s3"},
        ins={"snapshots": AssetIn(names.SNAPSHOT), "states": AssetIn(names.STATE)},
        # published once the history is committed: the public files never show what the archive does not hold
        deps=[names.HISTORY],
        # no materialization when nothing was published, so the freshness check sees only real publications
        output_required=False,
        backfill_policy=ONE_RUN,
        check_specs=[
            AssetCheckSpec(
                LATEST_CHECK,
                asset=names.PUBLIC_OUTPUTS,
                description=f"latest_azure.json was published, or kept because a newer partition published it; it "
                f"is never replaced by an empty file or one with less than {MIN_LATEST_SHARE:.0%} of its rows",
            )
        ],
    )
    def azure_public_outputs(
        context: AssetExecutionContext, store: S3Store, snapshots: StoredPartitions, states: StoredPartitions
    ) -> Iterator[MaterializeResult | AssetCheckResult | AssetMaterialization]:
        """Publishes, public-read, once the partition's history is committed: the partition's merged rows as
        `rawdata/azure/YYYY/MM/DD/HH-MM-SS.csv.gz`; the latest known row of every workload as
        `latest_data/latest_azure.json` (never rolled back by an older partition, never replaced by an empty or much
        smaller table); the distinct (tier, type, region) ever seen in `query-selector/azure/query_selector.json`;
        and the regions of every instance type in `query-selector/associated/association_azure.json` (the web site's
        query form). Partitions the merge recovered before the run's own are published first. A run that merged
        nothing publishes nothing and records no materialization."""
        files = PublicFiles(store)
        partitions = PartitionStore(store)
        written, rows, added, associated, newest, recovered = [], 0, 0, 0, None, []
        with measure() as m:
            for key in sorted(context.partition_keys):
                snapshot = snapshots[key]
                if snapshot is None:
                    continue
                if newest is None:  # the run's first merged partition: what the merge recovered before it first
                    for earlier in StateChain(store).recovered_before(key):
                        frame = partitions.load(names.SNAPSHOT, earlier)
                        if frame is None:
                            continue
                        written.append(files.publish_csv(earlier, frame))
                        added += files.add_to_selector(frame)
                        associated += files.add_to_association(frame)
                        recovered.append(earlier)
                        yield AssetMaterialization(
                            asset_key=names.PUBLIC_OUTPUTS,
                            partition=earlier,
                            description=f"recovered by run {context.run_id}: published before its partitions",
                            metadata={"rows": len(frame), "recovered_by_run": context.run_id},
                        )
                written.append(files.publish_csv(key, snapshot))
                added += files.add_to_selector(snapshot)
                associated += files.add_to_association(snapshot)
                rows += len(snapshot)
                newest = key
            latest = None
            if newest is not None and (state := states[newest]) is not None:
                latest = files.publish_latest(newest, state_from_frame(state))
                if latest.published:
                    written.append(LATEST_JSON_KEY)
        refused = latest is not None and latest.refused
        if newest is not None:
            yield MaterializeResult(
                metadata={
                    "rows": rows,
                    "keys_written": MetadataValue.json(written[-20:]),
                    "latest_published": bool(latest and latest.published),
                    "latest": latest.reason if latest else "nothing merged",
                    "selector_entries_added": added,
                    "association_pairs_added": associated,
                    "recovered_partitions": MetadataValue.json(recovered),
                    **run_metadata(m),
                }
            )
        yield AssetCheckResult(
            check_name=LATEST_CHECK,
            passed=not refused,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "latest": latest.reason if latest else "nothing merged",
                "rows": latest.rows if latest else 0,
                **({"error": f"latest_azure.json kept: {latest.reason}"} if refused else {}),
            },
        )

    return azure_public_outputs
