"""Dagster partition definitions: 10-minute UTC windows and days, starting at SPOTLAKE_PARTITION_START.

The time rules themselves (data time = end of the window, desired counts) are in timekeys.py.
"""

from __future__ import annotations

from dagster import DailyPartitionsDefinition, TimeWindowPartitionsDefinition

from spotlake_assets.core.timekeys import (  # noqa: F401 - re-exported: the rules belong with the partitions for most callers
    DEFAULT_PARTITION_START,
    DESIRED_COUNT_CYCLE,
    PARTITION_FMT,
    PARTITION_LENGTH,
    PARTITION_MINUTES,
    data_time,
    desired_count,
    format_time,
    newest_closed_partition,
    parse_partition_key,
    partition_key_for_data_time,
    partition_start,
)


def ten_minute_partitions(start: str) -> TimeWindowPartitionsDefinition:
    return TimeWindowPartitionsDefinition(
        cron_schedule="*/10 * * * *", start=start, fmt=PARTITION_FMT, timezone="UTC"
    )


def daily_partitions(start: str) -> DailyPartitionsDefinition:
    # end_offset=1: today is a partition already, its pool is built from today's first price snapshot
    return DailyPartitionsDefinition(
        start_date=parse_partition_key(start).strftime("%Y-%m-%d"), timezone="UTC", end_offset=1
    )


TEN_MINUTE_PARTITIONS = ten_minute_partitions(partition_start())
DAILY_PARTITIONS = daily_partitions(partition_start())
