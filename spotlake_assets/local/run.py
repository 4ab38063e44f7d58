"""Run the whole graph for consecutive partitions on the local stack, each replayed at its own data time."""

from __future__ import annotations

from dataclasses import dataclass, field

from dagster import DagsterInstance, materialize

from resources.clock import Clock
from resources.io_manager import MissingSnapshotError, read_frame
from spotlake_assets.core.layout import key_stem

from ..dataset.history import azure_dynamodb_history
from ..dataset.outputs import azure_public_outputs
from ..dataset.snapshot import azure_spot_snapshot
from ..defs import build_resources
from ..partitions import data_time, desired_count
from ..sources.eviction import azure_eviction_raw
from ..sources.price import azure_price_raw
from ..sources.sps import azure_sps_raw, azure_sps_request_pool
from .stack import LocalStack

COLLECT = [azure_price_raw, azure_eviction_raw]
MERGE_AND_PUBLISH = [azure_sps_raw, azure_spot_snapshot, azure_dynamodb_history, azure_public_outputs]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class PartitionSummary:
    partition: str
    desired_count: int
    rows: dict[str, int]  # asset -> rows (from its materialization metadata)
    changes_written: int
    missing_sources: list[str]


@dataclass
class RunReport:
    partitions: list[PartitionSummary] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    dynamodb_items: int = 0
    output_keys: list[str] = field(default_factory=list)  # every key in the write bucket

    @property
    def success(self) -> bool:
        return not self.failures


def _metadata(result, asset: str) -> dict:
    """The metadata of the asset's materialization in this run ({} when it did not materialize)."""
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return {}


def run_partitions(stack: LocalStack, keys: list[str]) -> RunReport:
    report = RunReport()
    resources = build_resources(stack.settings)
    store = resources["store"]
    with DagsterInstance.ephemeral() as instance:
        for key in keys:
            t = data_time(key)
            stack.emulator.set_time(t)
            resources["clock"] = Clock(frozen_at=t.isoformat())

            def run(assets, partition, resources=resources):
                result = materialize(assets, partition_key=partition, resources=resources, instance=instance,
                                     raise_on_error=False, run_config=QUIET)
                report.failures += [f"{partition} {e.step_key}" for e in result.all_events if e.is_step_failure]
                return result

            collected = run(COLLECT, key)
            day = key[:10]
            try:
                read_frame(store, key_stem("azure_sps_request_pool", day))
            except MissingSnapshotError:
                run([azure_sps_request_pool], day)
            published = run(MERGE_AND_PUBLISH, key)
            rows = {a: _metadata(collected, a).get("rows", 0) for a in ("azure_price_raw", "azure_eviction_raw")}
            rows.update({a: _metadata(published, a).get("rows", 0) for a in ("azure_sps_raw", "azure_spot_snapshot")})
            snapshot = _metadata(published, "azure_spot_snapshot")
            report.partitions.append(
                PartitionSummary(
                    partition=key,
                    desired_count=desired_count(key),
                    rows=rows,
                    changes_written=_metadata(published, "azure_dynamodb_history").get("items_written", 0),
                    missing_sources=list(snapshot.get("missing_sources", [])),
                )
            )
    report.dynamodb_items = resources["history"].count_items()
    report.output_keys = sorted(store.list_keys(""))
    return report


def summary_lines(report: RunReport, bucket: str) -> list[str]:
    lines = ["", "partition         count  price     IF    SPS  merged  changes written  missing"]
    for p in report.partitions:
        r = p.rows
        lines.append(
            f"{p.partition}  {p.desired_count:>5}  {r['azure_price_raw']:>5}  {r['azure_eviction_raw']:>5}  "
            f"{r['azure_sps_raw']:>5}  {r['azure_spot_snapshot']:>6}  {p.changes_written:>15}  "
            f"{', '.join(p.missing_sources) or '-'}"
        )
    lines.append(f"\nitems in DynamoDB: {report.dynamodb_items}")
    lines.append(f"S3 keys written (s3://{bucket}/):")
    lines += [f"  {k}" for k in report.output_keys]
    lines += [f"FAILED {f}" for f in report.failures]
    return lines
