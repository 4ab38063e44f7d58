"""The monthly archive of the time series on S3, and the TTL guard it feeds (docs/design.md "Hot and cold")."""

from dagster import AssetExecutionContext, AssetsDefinition, Failure, MaterializeResult, MetadataValue, asset

from resources.archive import ArchiveError, MonthArchive, MonthNotReady
from resources.archive_expiry import ExpiryGuard
from resources.clock import Clock
from resources.history_table import HistoryTable
from resources.s3 import S3Store

from ..core import archive_keys as ak
from ..core import names
from ..monitoring import measure, run_metadata
from ..partitions import Partitions


def build_archive_asset(partitions: Partitions) -> AssetsDefinition:
    @asset(
        name=names.ARCHIVE,
        partitions_def=partitions.months,
        group_name="dataset",
        kinds={"s3", "parquet"},
        deps=[names.HISTORY],
    )
    def azure_history_archive(
        context: AssetExecutionContext, store: S3Store, history: HistoryTable, clock: Clock
    ) -> MaterializeResult:
        """The month's history as open Parquet on S3 (public, under archive/azure/history/): `changes`, every
        point stored in DynamoDB for a data time in the month, and `checkpoints`, the daily checkpoints; plus one
        small file per market that the query API reads, and a manifest listing every file's rows and SHA-256.
        Built from the stored change frames and daily states of the month's committed partitions, once the month
        is over and settled (6 h); a partition never committed is listed as lost in the manifest. Re-running a
        month writes the same bytes. The archive is then verified (every file re-read, its keys compared with the
        partitions' DynamoDB keys) and only then may TTL delete the month's DynamoDB items (docs/design.md "Hot
        and cold"). Schema and guarantees: docs/contract.md "The archive"."""
        month = context.partition_key[:7]
        now = clock.now()
        archive = MonthArchive(store, partitions.first_key)
        with measure() as m:
            try:
                parts = archive.partitions(month, now)
                manifest = archive.build(parts)
                record = archive.verify(month, now)
            except MonthNotReady as exc:
                raise Failure(str(exc), allow_retries=False) from exc
            except ArchiveError as exc:
                raise Failure(str(exc)) from exc
            decision = ExpiryGuard(archive, history).reconcile(now)
        files = manifest["files"]
        by_kind = {kind: [f for f in files if f["kind"] == kind] for kind in ("changes", "checkpoints", "lookup")}
        return MaterializeResult(
            metadata={
                "rows": sum(f["rows"] for f in by_kind["changes"]),
                "checkpoint_rows": sum(f["rows"] for f in by_kind["checkpoints"]),
                "lookup_files": len(by_kind["lookup"]),
                "bytes": sum(f["bytes"] for f in files),
                "partitions_committed": parts_committed(manifest),
                "partitions_lost": MetadataValue.json(manifest["partitions"]["lost"][:50]),
                "manifest": MetadataValue.path(f"s3://{store.write_bucket}/{ak.manifest_key(month)}"),
                "verified_items": record["items"],
                "ttl": f"{'enabled' if decision.enabled else 'disabled'}: {decision.reason}",
                **run_metadata(m),
            }
        )

    return azure_history_archive


def parts_committed(manifest: dict) -> str:
    partitions = manifest["partitions"]
    return f"{partitions['committed']} of {partitions['expected']}"
