"""Jobs and schedules: the whole 10-minute graph every 10 minutes, the SPS request pool once a day."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetChecksDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

from .core import names
from .partitions import Partitions

# Run-queue tag limited to one run at a time by dagster.yaml (make dev) and infra's instance config.
SERIAL_TAG = "spotlake/serial"


def build_jobs(
    partitions: Partitions, running: bool = False, freshness_checks: Sequence[AssetChecksDefinition] = ()
) -> tuple[list, list[ScheduleDefinition]]:
    """The jobs and their schedules; `running`: the schedules run from the first deployment on (`prod`: an
    archive must not wait for someone to switch it on), else an operator starts them in the UI."""
    status = DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED
    collect = define_asset_job(
        names.COLLECT_JOB,
        # the assets and their checks but the freshness checks, which their sensor runs (spotlake_assets/freshness.py)
        selection=AssetSelection.assets(*names.TEN_MINUTE_ASSETS) - AssetSelection.checks(*freshness_checks),
        partitions_def=partitions.ten_minutes,
        description="Collect price, IF and SPS for a 10-minute partition, merge, store the changes, publish.",
        # one at a time (the instance's run queue limits this tag to 1): N+1 merges after N committed
        tags={SERIAL_TAG: names.COLLECT_JOB},
    )
    request_pool = define_asset_job(
        names.REQUEST_POOL_JOB,
        selection=AssetSelection.assets(names.SPS_REQUEST_POOL),
        partitions_def=partitions.days,
        description="Rebuild the day's SPS request pool from its first price snapshot.",
    )
    schedules = [
        # At each 10-minute boundary, the partition whose window just closed (its data time is the tick).
        build_schedule_from_partitioned_job(collect, default_status=status),
        # Today's pool at 00:15, after the first partition of the day (collected at 00:10) has its price snapshot.
        build_schedule_from_partitioned_job(request_pool, hour_of_day=0, minute_of_hour=15, default_status=status),
    ]
    return [collect, request_pool], schedules
