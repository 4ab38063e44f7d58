"""Jobs and schedules: the whole 10-minute graph every 10 minutes, the SPS request pool once a day, the archive of
a month after it ends and again just before its DynamoDB items may expire."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetChecksDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    build_schedule_from_partitioned_job,
    define_asset_job,
    schedule,
)

from .core import archive_keys as ak
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
    archive = define_asset_job(
        names.ARCHIVE_JOB,
        selection=AssetSelection.assets(names.ARCHIVE),
        partitions_def=partitions.months,
        description="Archive a month of the history to S3, verify it, and let TTL expire what is archived.",
    )
    schedules = [
        # At each 10-minute boundary, the partition whose window just closed (its data time is the tick).
        build_schedule_from_partitioned_job(collect, default_status=status),
        # Today's pool at 00:15, after the first partition of the day (collected at 00:10) has its price snapshot.
        build_schedule_from_partitioned_job(request_pool, hour_of_day=0, minute_of_hour=15, default_status=status),
        archive_schedule(archive, partitions, status),
    ]
    return [collect, request_pool, archive], schedules




def months_to_archive(day: str, first_month: str) -> list[tuple[str, str]]:
    """(month, why) the archive job runs for on `day` (YYYY-MM-DD): the month that ended, and the month whose
    recheck before expiry falls on that day."""
    month = day[:7]
    found = []
    if day.endswith("-01") and ak.previous_month(month) >= first_month:
        found.append((ak.previous_month(month), "ended"))
    for candidate in (ak.previous_month(month), ak.previous_month(ak.previous_month(month))):
        recheck = ak.first_expiry(candidate) - ak.GUARD_MARGIN - ak.RECHECK_BEFORE_DUE
        if f"{recheck:%Y-%m-%d}" == day and candidate >= first_month:
            found.append((candidate, "recheck before expiry"))
    return found


def archive_schedule(job, partitions: Partitions, status: DefaultScheduleStatus) -> ScheduleDefinition:  # noqa: ANN001
    # the start's month: it has no partition yet while it has not ended (a deployment or a local run started this month)
    first_month = f"{partitions.months.start:%Y-%m}"

    @schedule(job=job, cron_schedule="30 6 * * *", execution_timezone="UTC", default_status=status,
              name=f"{names.ARCHIVE_JOB}_schedule")  # fmt: skip
    def archive_months(context: ScheduleEvaluationContext):  # noqa: ANN202
        """The month that ended (on the 1st) and the month about to become due for expiry (its last check)."""
        day = f"{context.scheduled_execution_time:%Y-%m-%d}"
        for month, why in months_to_archive(day, first_month):
            yield RunRequest(run_key=f"{month}:{why}", partition_key=f"{month}-01", tags={"spotlake/archive": why})

    return archive_months
