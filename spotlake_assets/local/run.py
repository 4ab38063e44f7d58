"""Run the real jobs for consecutive partitions on the local stack, each replayed at its own data time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from dagster import DagsterExecutionInterruptedError, DagsterInstance, Definitions

from resources.clock import Clock
from resources.continuity import StateChain

from ..core import names
from ..core.timekeys import data_time, desired_count
from ..defs import build_definitions, build_resources
from ..sensors import failed_error_checks
from .interrupts import InterruptWatch
from .stack import LocalStack, StandingStack

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class PartitionSummary:
    partition: str
    desired_count: int
    rows: dict[str, int]  # asset -> rows (from its materialization metadata)
    changes_written: int
    missing_sources: list[str]
    failed_checks: list[str] = field(default_factory=list)  # "asset / check" of every failing ERROR check
    lost_partitions: list[str] = field(default_factory=list)  # partitions the merge found no committed state for


@dataclass
class RunReport:
    partitions: list[PartitionSummary] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    items_written: int = 0  # DynamoDB points written by the runs (from their metadata: no table scan)
    output_keys: list[str] = field(default_factory=list)  # every key in the write bucket

    @property
    def success(self) -> bool:
        return not self.failures


class RunInterrupted(Exception):
    """Ctrl-C during `run_partitions`: `report.partitions` holds the partitions whose runs finished; `current` is the
    one that was running (None: none was)."""

    def __init__(self, report: RunReport, current: str | None) -> None:
        super().__init__(f"interrupted during {current}" if current else "interrupted")
        self.report = report
        self.current = current


def _metadata(result, asset: str) -> dict:
    """The metadata of the asset's materialization in this run ({} when it did not materialize)."""
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return {}


def run_partitions(
    stack: LocalStack | StandingStack,
    keys: list[str],
    request_pools: bool = True,
    at: dict[str, datetime] | None = None,
    on_partition: Callable[[PartitionSummary, float], None] | None = None,
    interrupts: InterruptWatch | None = None,
) -> RunReport:
    """Materialize `azure_collect_10min` for each partition, on an embedded stack or a standing one (another
    process's, `run-local --stack`), as the schedule would at its data time (or at
    `at[key]`), and the day's request pool after the day's first partition (as its 00:15 schedule does; until then
    the first run builds one from its own prices) unless `request_pools` is False. `on_partition(summary, seconds)`
    is called as each partition finishes. With `interrupts`, Ctrl-C stops after the running step and raises
    RunInterrupted instead of going on with the next partition (Dagster's runs swallow it)."""
    report = RunReport()
    pools: set[str] = set()
    current: str | None = None
    try:
        with DagsterInstance.ephemeral() as instance:
            for current in keys:
                started = time.monotonic()
                t = (at or {}).get(current, data_time(current))
                stack.emulator.set_time(t)
                defs = build_definitions(stack.settings, clock=Clock(frozen_at=t.isoformat()))

                def run(job: str, partition: str, defs: Definitions = defs):
                    result = defs.resolve_job_def(job).execute_in_process(
                        partition_key=partition, instance=instance, raise_on_error=False, run_config=QUIET
                    )
                    if interrupts is not None and interrupts.interrupted:
                        raise KeyboardInterrupt  # its failed steps are the interrupt, not the partition's
                    report.failures += [f"{partition} {e.step_key}" for e in result.all_events if e.is_step_failure]
                    return result

                result = run(names.COLLECT_JOB, current)
                day = f"{data_time(current):%Y-%m-%d}"
                if request_pools and day not in pools:
                    run(names.REQUEST_POOL_JOB, day)
                    pools.add(day)
                summary = _summary(current, result, instance)
                report.items_written += summary.changes_written
                report.partitions.append(summary)
                if on_partition:
                    on_partition(summary, time.monotonic() - started)
            current = None
            store = build_resources(stack.settings)["store"]
            report.output_keys = sorted(store.list_keys(""))  # type: ignore[attr-defined]
    except (KeyboardInterrupt, DagsterExecutionInterruptedError):
        raise RunInterrupted(report, current) from None
    return report


def newest_committed(stack: LocalStack | StandingStack, since: str) -> str | None:
    """The stack's newest committed partition at or after `since` (None: none). A partition before it cannot run on
    its own (docs/design.md "Continuity": only a range up to the newest fills a gap), and it and the partitions
    before it are in the stack already or never will be one at a time."""
    commit = StateChain(build_resources(stack.settings)["store"]).newest_committed_from(since)  # type: ignore[arg-type]
    return commit.partition if commit else None


def _summary(key: str, result, instance: DagsterInstance) -> PartitionSummary:
    snapshot = _metadata(result, names.SNAPSHOT)
    return PartitionSummary(
        partition=key,
        desired_count=desired_count(key),
        rows={a: _metadata(result, a).get("rows", 0) for a in (*names.RAW_SOURCES, names.SNAPSHOT)},
        changes_written=_metadata(result, names.HISTORY).get("items_written", 0),
        missing_sources=list(snapshot.get("missing_sources", [])),
        failed_checks=sorted(name for name, _ in failed_error_checks(instance, result.run_id)),
        lost_partitions=list(snapshot.get("lost_partitions", [])),
    )


def run_range(stack: LocalStack, keys: list[str], now: datetime, instance: DagsterInstance):
    """Materialize `azure_collect_10min` over consecutive past partitions in one run (a single-run backfill), the
    clock at `now`: raw snapshots are imported from storage and the merge runs the range oldest first."""
    defs = build_definitions(stack.settings, clock=Clock(frozen_at=now.isoformat()))
    return defs.resolve_job_def(names.COLLECT_JOB).execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
        run_config=QUIET,
        raise_on_error=False,
    )


def summary_lines(report: RunReport, bucket: str) -> list[str]:
    lines = ["", "partition         count  price     IF    SPS  merged  changes written  missing"]
    for p in report.partitions:
        r = p.rows
        lines.append(
            f"{p.partition}  {p.desired_count:>5}  {r[names.PRICE_RAW]:>5}  {r[names.EVICTION_RAW]:>5}  "
            f"{r[names.SPS_RAW]:>5}  {r[names.SNAPSHOT]:>6}  {p.changes_written:>15}  "
            f"{', '.join(p.missing_sources) or '-'}"
        )
    lines.append(f"\npoints written to DynamoDB: {report.items_written}")
    lines.append(f"S3 keys written (s3://{bucket}/):")
    lines += [f"  {k}" for k in report.output_keys]
    lines += [f"FAILED {f}" for f in report.failures]
    return lines
