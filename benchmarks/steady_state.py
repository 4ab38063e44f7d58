"""Inputs of the graph-memory benchmarks: raw snapshots of consecutive partitions, and a committed steady state.

- Raw snapshots come from the emulator's catalogue (spotlake_assets.local.snapshots: what the raw assets would
  store when collecting live from the emulator, without HTTP), built once per (seed, scale, drift rate, partition)
  and cached as Parquet under build/bench/graph/.
- They are stored in a stack's write bucket through the IO manager's `PartitionStore`, as the raw assets store
  them, so that a run over past partitions imports them.
- A steady state: the merge of one whole desired-count cycle (11 partitions, every series of every count) from an
  empty state, stored as the state of the partition before a range and committed by the history table's own
  `load_partition` (its manifest, with no points: the benchmarks measure the range, not the history's first
  flood of ~560k new series at full scale). Every partition of the range then merges onto a full-size state, as
  in production after the first cycle, and the memory of short and long ranges compares like with like.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

CACHE = Path("build/bench/graph")
CYCLE = 11  # partitions of one desired-count cycle: every count asked once
SOURCES = ("price", "eviction", "sps")


def partition_keys(first: str, count: int) -> list[str]:
    """`count` consecutive partition keys from `first`."""
    from datetime import timedelta

    from spotlake_assets.core.timekeys import PARTITION_FMT, parse_partition_key

    start = parse_partition_key(first)
    return [(start + timedelta(minutes=10 * i)).strftime(PARTITION_FMT) for i in range(count)]


def keys_before(key: str, count: int) -> list[str]:
    """The `count` partitions just before `key`, oldest first."""
    from spotlake_assets.core.timekeys import previous_partition_key

    out = []
    for _ in range(count):
        key = previous_partition_key(key)
        out.append(key)
    return out[::-1]


class RawInputs:
    """Raw snapshots of partitions at one (seed, scale, drift rate), cached as Parquet; the SPS request pool of
    every partition is the one built from the first price table asked (as a day's pool is its first snapshot's)."""

    def __init__(self, seed: int, scale: str, drift_rate: float, cache: Path = CACHE) -> None:
        self.seed, self.scale, self.drift_rate = seed, scale, drift_rate
        self.dir = cache / f"{scale}-seed{seed}-drift{drift_rate:g}"
        self._pool: pd.DataFrame | None = None

    def path(self, key: str, source: str) -> Path:
        return self.dir / f"{key.replace(':', '-')}.{source}.parquet"

    def pool_price(self, key: str) -> pd.DataFrame:
        from spotlake_assets.core.timekeys import data_time
        from spotlake_assets.local.snapshots import price_table

        if self._pool is None:
            path = self.dir / "pool-price.parquet"
            if not path.exists():
                self.dir.mkdir(parents=True, exist_ok=True)
                price_table(self.seed, self.scale, data_time(key), self.drift_rate).to_parquet(path, index=False)
            self._pool = pd.read_parquet(path)
        return self._pool

    def ensure(self, keys: list[str]) -> None:
        """Build the snapshots of `keys` that are not cached yet."""
        from spotlake_assets.core.timekeys import data_time, desired_count
        from spotlake_assets.local.snapshots import raw_snapshots

        todo = [k for k in keys if not all(self.path(k, s).exists() for s in SOURCES)]
        started = time.perf_counter()
        for i, key in enumerate(todo, 1):
            raw = raw_snapshots(
                self.seed, self.scale, data_time(key), desired_count(key), self.pool_price(keys[0]), self.drift_rate
            )
            for source in SOURCES:
                getattr(raw, source).to_parquet(self.path(key, source), index=False)
            if i % 10 == 0 or i == len(todo):
                print(
                    f"inputs: {i}/{len(todo)} partitions built ({time.perf_counter() - started:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )

    def load(self, key: str) -> dict[str, pd.DataFrame]:
        return {source: pd.read_parquet(self.path(key, source)) for source in SOURCES}

    def store(self, resources: dict, keys: list[str]) -> None:
        """Store the raw snapshots of `keys` as the raw assets would (the IO manager's PartitionStore)."""
        from resources.io_manager import PartitionStore
        from spotlake_assets.core import names

        partitions = PartitionStore(resources["store"])
        assets = dict(zip(SOURCES, names.RAW_SOURCES, strict=True))
        for key in keys:
            for source, frame in self.load(key).items():
                partitions.save(assets[source], key, frame, "benchmark")

    def commit_steady_state(self, resources: dict, before: str) -> int:
        """Merge the cycle of partitions before `before` from an empty state; store the result as the state of the
        partition just before `before` and commit it (a manifest without points). Returns its series."""
        from resources.io_manager import PartitionStore
        from spotlake_assets.core import names
        from spotlake_assets.core.layout import STATE_CONTINUES
        from spotlake_assets.core.timekeys import data_time, desired_count
        from spotlake_assets.core.transforms.merge import merge_snapshot
        from spotlake_assets.core.transforms.state import state_to_frame

        keys = keys_before(before, CYCLE)
        self.ensure(keys)
        state = result = None
        for key in keys:
            raw = self.load(key)
            result = merge_snapshot(
                raw["price"], raw["eviction"], raw["sps"], desired_count(key), data_time(key), state
            )
            state = result.state
        assert state is not None and result is not None
        frame = state_to_frame(state)
        frame.attrs[STATE_CONTINUES] = ""  # the history began there
        store = resources["store"]
        PartitionStore(store).save(names.STATE, keys[-1], frame, "benchmark")
        resources["history"].load_partition(store, keys[-1], result.changed.iloc[:0], continues=None)
        return len(state.series)
