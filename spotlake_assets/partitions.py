"""The Dagster partitions of the collector: 10-minute UTC windows and days, from the start the settings give.

The time rules themselves (data time = end of the window, desired counts) are Dagster-free, in core/timekeys.py.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dagster import (
    BackfillPolicy,
    BetaWarning,
    DailyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
)

from .core.timekeys import PARTITION_FMT, data_time, parse_partition_key


@contextmanager
def quiet_beta_notices() -> Iterator[None]:
    """BackfillPolicy.single_run() (a day of backfill is one run, docs/design.md "Backfills") and mappings that may
    point before the first or after the last partition are beta: their notices would print at every load."""
    with warnings.catch_warnings():
        for parameter in ("backfill_policy", "allow_nonexistent_upstream_partitions"):
            warnings.filterwarnings("ignore", message=f"Parameter `{parameter}`", category=BetaWarning)
        yield


with quiet_beta_notices():
    ONE_RUN = BackfillPolicy.single_run()
    # The merge's self-dependency: each partition continues the state of the one before.
    PREVIOUS_PARTITION = TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
    # A day's request pool is built from its first price snapshot by data time, which belongs to the day before's
    # last partition (data time 00:00); the mapping offers both days and the pool asset picks it.
    DAY_AND_DAY_BEFORE = TimeWindowPartitionMapping(start_offset=-1, allow_nonexistent_upstream_partitions=True)
    # A 10-minute partition uses its day's pool, or the day before's until today's exists (144 partitions = a day).
    POOL_OF_DAY_OR_DAY_BEFORE = TimeWindowPartitionMapping(
        start_offset=-144, allow_nonexistent_upstream_partitions=True
    )


@dataclass(frozen=True)
class Partitions:
    ten_minutes: TimeWindowPartitionsDefinition
    days: DailyPartitionsDefinition
    months: MonthlyPartitionsDefinition  # the archive's, by data time (a month's first partition ends at 00:10)
    first_key: str  # the first 10-minute partition: the history begins with it

    @classmethod
    def starting_at(cls, start: str) -> Partitions:
        """10-minute windows from `start` (a partition key) and the days from its date."""
        return cls(
            ten_minutes=TimeWindowPartitionsDefinition(
                cron_schedule="*/10 * * * *", start=start, fmt=PARTITION_FMT, timezone="UTC"
            ),
            # end_offset=1: today is a partition already, its pool is built from today's first price snapshot
            days=DailyPartitionsDefinition(
                start_date=parse_partition_key(start).strftime("%Y-%m-%d"), timezone="UTC", end_offset=1
            ),
            months=MonthlyPartitionsDefinition(start_date=data_time(start).strftime("%Y-%m-01"), timezone="UTC"),
            first_key=start,
        )
