"""Partition keys, data times and the desired count of a partition."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from spotlake_assets.core.timekeys import (
    DESIRED_COUNT_CYCLE,
    data_time,
    desired_count,
    newest_closed_partition,
    partition_key_for_data_time,
)


def day_keys(day: datetime) -> list[str]:
    return [(day + timedelta(minutes=10 * i)).strftime("%Y-%m-%d-%H:%M") for i in range(144)]


def test_data_time_is_the_end_of_the_window():
    assert data_time("2026-11-28-10:10") == datetime(2026, 11, 28, 10, 20, tzinfo=UTC)
    assert data_time("2026-11-28-23:50") == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    assert partition_key_for_data_time(datetime(2026, 11, 29, tzinfo=UTC)) == "2026-11-28-23:50"
    with pytest.raises(ValueError, match="10-minute boundary"):
        data_time("2026-11-28-10:15")


def test_newest_closed_partition():
    assert newest_closed_partition(datetime(2026, 11, 28, 10, 27, 59, tzinfo=UTC)) == "2026-11-28-10:10"
    assert newest_closed_partition(datetime(2026, 11, 28, 10, 20, tzinfo=UTC)) == "2026-11-28-10:10"


def test_the_collection_at_midnight_asks_one_and_the_cycle_follows():
    keys = day_keys(datetime(2026, 11, 28, tzinfo=UTC))
    # the day's partitions by data time 00:10 .. 00:00 next day
    counts = [desired_count(k) for k in keys]
    assert desired_count("2026-11-27-23:50") == 1  # data time 00:00: the first collection of the 28th
    assert counts[:11] == list(DESIRED_COUNT_CYCLE[1:]) + [1]
    assert counts[-1] == 1 and counts[-2] == 1  # 23:50 is the 144th slot, then 00:00 restarts the cycle
    assert set(counts) == set(DESIRED_COUNT_CYCLE)


def test_desired_count_does_not_depend_on_order_or_repetition():
    keys = day_keys(datetime(2026, 11, 28, tzinfo=UTC)) + day_keys(datetime(2026, 11, 29, tzinfo=UTC))
    expected = {k: desired_count(k) for k in keys}
    shuffled = keys * 3
    random.Random(4).shuffle(shuffled)
    assert all(desired_count(k) == expected[k] for k in shuffled)
    # each day has the same sequence
    assert [expected[k] for k in keys[:144]] == [expected[k] for k in keys[144:]]
