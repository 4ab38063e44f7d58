"""How asset outputs are stored and inputs loaded: pandas frames as Parquet in S3 (docs/design.md "Storage").

The loading rules, all here:
- An output of a partitioned asset is an iterable of `(partition key, frame)` pairs, one per partition of the run,
  whatever their number (a scheduled run has one, a single-run backfill many). Each frame is written as soon as
  it comes, to the write bucket: a generator is consumed one partition at a time, so a ranged run holds one
  partition's frame, not the range. A frame of `None` says the partition's source failed while it was live: a
  failure marker is stored instead, so that a later import tells "failed then" from "never collected".
- A multi-asset whose outputs are computed together partition by partition (the merge: snapshot, changes and
  state) cannot hand Dagster one output at a time per partition; it writes each partition of every output through
  `PartitionStore.save` as soon as it is computed and returns the `Saved` receipts in place of the frames, which
  the IO manager checks and records like frames it wrote itself.
- An input is a mapping {upstream partition key: frame or None}, read when a key is accessed (so a ranged run
  holds one partition at a time). A partition is looked up in the write bucket, then the read bucket; None
  when it failed or was never stored: the merge then treats that source as missing.
- The merge's previous state is found by `PreviousStateLoader`: the newest committed state before the run's first
  partition, from the write bucket only (`test` must never continue production's history). It is read when the
  merge asks for it, so the run does not keep it once the merge has moved on.
"""

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spotlake_assets.core import layout, names
from spotlake_assets.core.transforms.state import MergeState, state_from_frame

from .continuity import ContinuityError, StateChain, newest_committed_settled
from .s3 import S3Store

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """Parquet bytes of a frame, deterministic: the same frame gives the same bytes (index dropped, no
    timestamps in the file), so a re-run rewrites identical objects."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def frame_from_parquet(data: bytes) -> pd.DataFrame:
    return pq.read_table(pa.BufferReader(data)).to_pandas()


@dataclass(frozen=True)
class Stored:
    """What is stored for one asset partition: a frame, a failure marker, or nothing."""

    status: Literal["stored", "failed", "missing"]
    frame: pd.DataFrame | None = None
    tried: tuple[str, ...] = ()  # the objects looked for, for error messages


@dataclass(frozen=True)
class Saved:
    """A partition of an asset output, already written by `PartitionStore.save`: where, and how much."""

    asset: str
    partition_key: str
    key: str  # the object written: the frame, or the failure marker when the frame was None
    rows: int
    nbytes: int


PartitionFrames = Iterable[tuple[str, pd.DataFrame | Saved | None]]  # what every partitioned asset returns


@dataclass(frozen=True)
class PartitionStore:
    """Frames of asset partitions in the environment's buckets, at the keys of spotlake_assets.core.layout."""

    store: S3Store

    def save(
        self,
        asset: str,
        partition_key: str,
        frame: pd.DataFrame | None,
        run_id: str,
        metadata: Mapping[str, str] | None = None,
    ) -> Saved:
        """Store a partition's frame (or its failure marker when None); `metadata` becomes the frame object's user
        metadata (a HEAD reads it without the frame)."""
        if frame is None:
            key = layout.failure_marker_key(asset, partition_key)
            body = json.dumps({"collected": False, "run_id": run_id}).encode()
            self.store.put(key, body, content_type="application/json")
            return Saved(asset, partition_key, key, 0, len(body))
        key = layout.frame_key(asset, partition_key)
        body = frame_to_parquet(frame)
        self.store.put(key, body, content_type=PARQUET_CONTENT_TYPE, metadata=metadata)
        return Saved(asset, partition_key, key, len(frame), len(body))

    def find(self, asset: str, partition_key: str) -> Stored:
        """The partition's frame from the write bucket, else the read bucket; else its failure marker; else
        (SPS only) the snapshot of that time at another desired count, as imported legacy history has."""
        key = layout.frame_key(asset, partition_key)
        found = self.store.get(key)
        if found is not None:
            return Stored("stored", frame_from_parquet(found))
        marker = layout.failure_marker_key(asset, partition_key)
        if self.store.get(marker) is not None:
            return Stored("failed")
        if asset == names.SPS_RAW:
            prefix = layout.raw_stems_any_count(partition_key)
            others = sorted(
                k for bucket in self.store.read_order for k in self.store.list_keys(prefix, bucket)
                if k.endswith(layout.PARQUET)
            )  # fmt: skip
            if others:
                return Stored("stored", frame_from_parquet(self.store.get(others[0]) or b""))
        return Stored("missing", tried=tuple(f"s3://{bucket}/{key}" for bucket in self.store.read_order))

    def collected(self, partition_key: str) -> bool:
        """Whether this environment stored anything of the partition's raw snapshots (a frame or a failure marker):
        a run collected it, whatever happened after. The write bucket only: what `test` may read of production is
        production's collection, not its own."""
        return any(
            self.store.head(key) is not None
            for asset in names.RAW_SOURCES
            for key in (layout.frame_key(asset, partition_key), layout.failure_marker_key(asset, partition_key))
        )

    def anything_to_import(self, partition_key: str) -> bool:
        """Whether a run of this partition, once its window is past, has anything to import: a frame or a failure
        marker of any raw source, in the write or the read bucket (SPS at any desired count, as imported legacy
        history has). Legacy pickles do not count: runs never read them (docs/operations.md)."""
        prefixes = (
            layout.raw_key_stem(names.PRICE_RAW, partition_key),
            layout.raw_key_stem(names.EVICTION_RAW, partition_key),
            layout.raw_stems_any_count(partition_key),
        )
        return any(
            key.endswith((layout.PARQUET, layout.FAILURE_MARKER))
            for bucket in self.store.read_order
            for prefix in prefixes
            for key in self.store.iter_keys(prefix, bucket)
        )

    def frame_metadata(self, asset: str, partition_key: str) -> Mapping[str, str] | None:
        """The user metadata of the partition's stored frame (write bucket), None when no frame is stored."""
        head = self.store.head(layout.frame_key(asset, partition_key))
        return None if head is None else head.get("Metadata", {})

    def load(self, asset: str, partition_key: str) -> pd.DataFrame | None:
        """The partition's frame, or None when it failed or was never stored."""
        return self.find(asset, partition_key).frame


class StoredPartitions(Mapping[str, pd.DataFrame | None]):
    """{partition key: frame or None} of an upstream asset, read from S3 at each access (never cached, so a
    ranged run holds one partition at a time: access each key once)."""

    def __init__(self, partitions: PartitionStore, asset: str, keys: Iterable[str]) -> None:
        self._partitions, self._asset, self._keys = partitions, asset, list(keys)

    def __getitem__(self, key: str) -> pd.DataFrame | None:
        if key not in self._keys:
            raise KeyError(f"{self._asset} partition {key} is not an input of this run")
        return self._partitions.load(self._asset, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _asset_name(context: dg.InputContext | dg.OutputContext) -> str:
    if not context.has_asset_key or not context.has_asset_partitions:
        raise dg.Failure("the Parquet IO manager stores partitioned asset outputs only")
    return context.asset_key.path[-1]


class SplitBucketParquetIOManager(dg.ConfigurableIOManager):
    """Writes every partitioned asset output as Parquet to the write bucket; loads inputs from the write bucket,
    then the read bucket (see the module docstring for the rules)."""

    store: dg.ResourceDependency[S3Store]

    def handle_output(self, context: dg.OutputContext, obj: PartitionFrames) -> None:
        name = _asset_name(context)
        expected = set(context.asset_partition_keys)
        partitions = PartitionStore(self.store)
        keys, rows, size, done = [], 0, 0, set()
        for partition_key, frame in obj:
            if partition_key not in expected or partition_key in done:
                raise dg.Failure(
                    f"asset {name} returned partition {partition_key!r} "
                    f"{'twice' if partition_key in done else 'that this run does not materialize'}"
                )
            if isinstance(frame, Saved):
                if (frame.asset, frame.partition_key) != (name, partition_key):
                    raise dg.Failure(
                        f"asset {name} returned, for partition {partition_key!r}, what was saved for "
                        f"{frame.asset} {frame.partition_key!r}"
                    )
                saved = frame
            elif frame is None or isinstance(frame, pd.DataFrame):
                saved = partitions.save(name, partition_key, frame, context.run_id)
            else:
                raise dg.Failure(f"asset {name} returned a {type(frame).__name__}; this IO manager stores DataFrames")
            del frame  # a generator's next frame is computed without this one held
            done.add(partition_key)
            keys.append(saved.key)
            rows += saved.rows
            size += saved.nbytes
        if done != expected:
            raise dg.Failure(f"asset {name} returned nothing for partitions {sorted(expected - done)[:10]}")
        # Dagster gives IO-manager metadata to every partition of the run alike: over several partitions these
        # are the run's totals and the keys written.
        context.add_output_metadata(
            {
                "s3_bucket": self.store.write_bucket,
                "s3_key": keys[0] if len(keys) == 1 else dg.MetadataValue.json(keys),
                "rows": rows,
                "bytes": size,
            }
        )

    def load_input(self, context: dg.InputContext) -> StoredPartitions:
        return StoredPartitions(PartitionStore(self.store), _asset_name(context), context.asset_partition_keys)


@dataclass(frozen=True)
class PreviousState:
    """The committed partition whose state a merge continues. The state itself is read by `load()` when the merge
    needs it: Dagster keeps a step's inputs for the whole step, and a ranged merge must not keep its first state
    beside every later one."""

    partition: str
    store: S3Store

    @property
    def key(self) -> str:
        return layout.frame_key(names.STATE, self.partition)

    def load(self) -> MergeState:
        data = self.store.get_from(self.store.write_bucket, self.key)
        if data is None:
            raise dg.Failure(
                f"partition {self.partition} is committed but its state is missing from "
                f"s3://{self.store.write_bucket}/{self.key}"
            )
        return state_from_frame(frame_from_parquet(data))


class PreviousStateLoader(dg.ConfigurableIOManager):
    """Loads the state the merge of a run's first partition continues: the newest *committed* state before it (its
    changes durable in DynamoDB; resources/continuity.py), from the write bucket only. Normally the partition just
    before; after a lost, failed or killed partition, the one before that gap. None when no state was ever
    committed before it: the history begins there.

    A partition of the gap that another run is materializing right now is waited for (at most `wait_seconds`), so
    two runs at once still merge in order (continuity.newest_committed_settled).
    """

    store: dg.ResourceDependency[S3Store]
    wait_seconds: float = 600.0
    poll_seconds: float = 5.0

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        raise dg.Failure("PreviousStateLoader only loads; the state is stored by the io_manager")

    def load_input(self, context: dg.InputContext) -> PreviousState | None:
        # Dagster maps a run over [a, b] to the states of [a-1, b-1]; all but a-1 are computed in this run.
        try:
            commit = newest_committed_settled(
                StateChain(self.store),
                context.instance,
                context.step_context.run_id,
                context.step_context.partition_key_range.start,
                wait_seconds=self.wait_seconds,
                poll_seconds=self.poll_seconds,
                log=context.log.info,
            )
        except ContinuityError as exc:
            raise dg.Failure(str(exc)) from None
        if commit is None:
            return None
        return PreviousState(commit.partition, self.store)  # read by the merge (load), once
