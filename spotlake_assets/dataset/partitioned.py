"""Inputs of assets that may run for one partition or, in a single-run backfill, for a range of them."""

from typing import TypeVar

T = TypeVar("T")


def by_partition(value: T | dict[str, T], partition_keys: list[str]) -> dict[str, T]:
    """{partition key: value}: the IO manager gives a dict for a range and a bare value for one partition."""
    if isinstance(value, dict):
        missing = sorted(set(partition_keys) - set(value))
        if missing:
            raise ValueError(f"input lacks partitions {missing[:5]}{'...' if len(missing) > 5 else ''}")
        return value
    if len(partition_keys) != 1:
        raise ValueError(f"one input value for {len(partition_keys)} partitions")
    return {partition_keys[0]: value}
