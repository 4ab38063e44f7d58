"""The public files the SpotLake web site and researchers read (legacy keys, public-read)."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from resources.io_manager import StoredPartitions
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
    ) -> MaterializeResult:
        """Publishes, public-read: the partition's merged rows as `rawdata/azure/YYYY/MM/DD/HH-MM-SS.csv.gz`; the
        latest known row of every workload as `latest_data/latest_azure.json` (never rolled back by an older
        partition, never replaced by an empty or much smaller table); the distinct (tier, type, region) ever seen in
        `query-selector/azure/query_selector.json`; and the regions of every instance type in
        `query-selector/associated/association_azure.json` (the web site's query form). A partition the merge
        skipped (nothing observed) publishes nothing."""
        files = PublicFiles(store)
        written, rows, added, associated, newest = [], 0, 0, 0, None
        with measure() as m:
            for key in sorted(context.partition_keys):
                snapshot = snapshots[key]
                if snapshot is None:
                    continue
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
        check = AssetCheckResult(
            check_name=LATEST_CHECK,
            passed=not refused,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "latest": latest.reason if latest else "nothing merged",
                "rows": latest.rows if latest else 0,
                **({"error": f"latest_azure.json kept: {latest.reason}"} if refused else {}),
            },
        )
        return MaterializeResult(
            check_results=[check],
            metadata={
                "rows": rows,
                "keys_written": MetadataValue.json(written[-20:]),
                "latest_published": bool(latest and latest.published),
                "latest": latest.reason if latest else "nothing merged",
                "selector_entries_added": added,
                "association_pairs_added": associated,
                **run_metadata(m),
            },
        )

    return azure_public_outputs
