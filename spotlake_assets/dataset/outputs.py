"""The public files the SpotLake web site and researchers read (legacy keys, public-read)."""

from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, MaterializeResult, MetadataValue, asset

from resources.io_manager import StoredPartitions
from resources.public_files import PublicFiles
from resources.s3 import S3Store

from ..core import names
from ..core.layout import LATEST_JSON_KEY
from ..core.transforms.state import state_from_frame
from ..monitoring import measure, run_metadata
from ..partitions import ONE_RUN, Partitions
from .history import required


def build_outputs_asset(partitions: Partitions) -> AssetsDefinition:
    @asset(
        name=names.PUBLIC_OUTPUTS,
        partitions_def=partitions.ten_minutes,
        group_name="publish",
        kinds={"s3"},
        ins={"snapshots": AssetIn(names.SNAPSHOT), "states": AssetIn(names.STATE)},
        backfill_policy=ONE_RUN,
    )
    def azure_public_outputs(
        context: AssetExecutionContext, store: S3Store, snapshots: StoredPartitions, states: StoredPartitions
    ) -> MaterializeResult:
        """Publishes, public-read: the partition's merged rows as `rawdata/azure/YYYY/MM/DD/HH-MM-SS.csv.gz`; the
        last known row of every series at desired count 1 as `latest_data/latest_azure.json` (only when no newer
        partition has published it); the distinct (tier, type, region) ever seen in
        `query-selector/azure/query_selector.json`; and the regions of every instance type in
        `query-selector/associated/association_azure.json` (the web site's query form)."""
        keys = sorted(context.partition_keys)
        files = PublicFiles(store)
        written, rows, added, associated = [], 0, 0, 0
        with measure() as m:
            for key in keys:
                snapshot = required(snapshots, names.SNAPSHOT, key)
                written.append(files.publish_csv(key, snapshot))
                added += files.add_to_selector(snapshot)
                associated += files.add_to_association(snapshot)
                rows += len(snapshot)
            newest = keys[-1]
            latest = files.publish_latest(newest, state_from_frame(required(states, names.STATE, newest)))
            if latest:
                written.append(LATEST_JSON_KEY)
        return MaterializeResult(
            metadata={
                "rows": rows,
                "keys_written": MetadataValue.json(written[-20:]),
                "latest_published": latest,
                "selector_entries_added": added,
                "association_pairs_added": associated,
                **run_metadata(m),
            }
        )

    return azure_public_outputs
