"""Time rules of the collector, free of Dagster objects: partition keys, data times, desired counts.

A 10-minute partition [10:10, 10:20) is collected at 10:20 and its rows are labelled with that
time, exactly as the legacy run at 10:20 did; so a partition's *data time* is the end of its window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

PARTITION_FMT = "%Y-%m-%d-%H:%M"
PARTITION_MINUTES = 10
PARTITION_LENGTH = timedelta(minutes=PARTITION_MINUTES)
# Recent, not years back: Dagster recommends at most 100,000 partitions (about two years of 10-minute ones).
DEFAULT_PARTITION_START = "2026-11-01-00:00"


def parse_partition_key(key: str) -> datetime:
    """The start of a 10-minute partition window, as an aware UTC datetime."""
    try:
        return datetime.strptime(key, PARTITION_FMT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"partition key {key!r} is not of the form YYYY-MM-DD-HH:MM") from exc


def data_time(partition_key: str) -> datetime:
    """The collection time of a 10-minute partition: the end of its window."""
    start = parse_partition_key(partition_key)
    if start.minute % PARTITION_MINUTES or start.second:
        raise ValueError(f"partition key {partition_key!r} is not on a 10-minute boundary")
    return start + PARTITION_LENGTH


def check_partition_key(key: str) -> str:
    """`key` if it names a 10-minute partition (YYYY-MM-DD-HH:MM on a 10-minute boundary), else ValueError."""
    data_time(key)
    return key


def previous_partition_key(partition_key: str) -> str:
    """The partition just before `partition_key` (whether or not the partitions definition still has it)."""
    return partition_key_for_data_time(data_time(partition_key) - PARTITION_LENGTH)


def partitions_ending_at(last: str, count: int) -> list[str]:
    """`count` consecutive partition keys, oldest first, the last being `last`."""
    end = data_time(last)
    return [partition_key_for_data_time(end - PARTITION_LENGTH * i) for i in reversed(range(count))]


def partitions_between(after: str, before: str) -> list[str]:
    """The partition keys strictly between two partitions, oldest first."""
    count = int((data_time(before) - data_time(after)) / PARTITION_LENGTH) - 1
    return partitions_ending_at(previous_partition_key(before), count) if count > 0 else []


def partition_key_for_data_time(t: datetime) -> str:
    """Inverse of data_time: the partition whose window ends at t."""
    return (t.astimezone(UTC) - PARTITION_LENGTH).strftime(PARTITION_FMT)


def newest_closed_partition(now: datetime) -> str:
    """The newest partition whose window has closed at `now`."""
    now = now.astimezone(UTC)
    end = now.replace(minute=now.minute - now.minute % PARTITION_MINUTES, second=0, microsecond=0)
    return partition_key_for_data_time(end)


def format_time(t: datetime) -> str:
    """`Time` column format of the dataset."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# SPS desired counts, cycled one per partition (docs/contract.md "Spot Placement Scores").
DESIRED_COUNT_CYCLE = (1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50)


def desired_count(partition_key: str) -> int:
    """The SPS desired count of a partition: a pure function of its key.

    The slot is the partition's data time counted in 10-minute steps from 00:00 UTC of that day, so the
    run collected at 00:00 (slot 0) asks 1, as the legacy forced on the first run of a UTC day, and the
    cycle restarts there every day (144 slots a day = 13 full cycles and one extra count of 1 at 23:50).
    """
    t = data_time(partition_key)
    slot = (t.hour * 60 + t.minute) // PARTITION_MINUTES
    return DESIRED_COUNT_CYCLE[slot % len(DESIRED_COUNT_CYCLE)]
