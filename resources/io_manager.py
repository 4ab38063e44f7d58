"""The IO manager of every asset: pandas DataFrames as Parquet in S3, written to the write bucket, read
back with fallback to the read bucket and, for backfills, to legacy `.pkl.gz` snapshots in a trusted
import bucket.

Keys come from spotlake_assets.core.layout.key_stem, so raw snapshots sit in the legacy layout
(`rawdata/azure/spot_price/YYYY/MM/DD/HH-MM_spot_price.parquet`) beside the legacy `.pkl.gz` files.
"""

import io
import typing
from collections.abc import Mapping

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spotlake_assets.core.layout import LEGACY_PICKLE, PARQUET, key_stem

from .s3 import S3Store

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


class MissingSnapshotError(LookupError):
    """No stored object for an asset partition in any bucket the store reads."""


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """Parquet bytes of a frame, deterministic: the same frame gives the same bytes (index dropped, no
    timestamps in the file), so a re-run rewrites identical objects."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def frame_from_parquet(data: bytes) -> pd.DataFrame:
    return pq.read_table(pa.BufferReader(data)).to_pandas()


def _frame_from_legacy_pickle(data: bytes, where: str) -> pd.DataFrame:
    """A legacy gzip-pickled DataFrame. Unpickling runs code chosen by the file's author: only for the trusted
    legacy import bucket, never for a bucket others can write. pandas' reader also copes with pickles written
    by the older pandas versions the legacy collector ran."""
    frame = pd.read_pickle(io.BytesIO(data), compression="gzip")  # trusted bucket only, see docstring
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"legacy snapshot {where} holds a {type(frame).__name__}, not a pandas DataFrame")
    return frame


def read_frame(store: S3Store, stem: str) -> pd.DataFrame:
    """The frame stored under `stem`: `<stem>.parquet` in the write bucket, then the read bucket; then, only
    when store.legacy_import_bucket is set, the legacy `<stem>.pkl.gz` there (a trusted bucket).
    Raises MissingSnapshotError listing every location tried."""
    parquet_key = stem + PARQUET
    found = store.get_with_source(parquet_key)
    if found is not None:
        return frame_from_parquet(found[0])
    tried = [f"s3://{bucket}/{parquet_key}" for bucket in store.read_order]
    if store.legacy_import_bucket:
        legacy = f"s3://{store.legacy_import_bucket}/{stem}{LEGACY_PICKLE}"
        data = store.get_from(store.legacy_import_bucket, stem + LEGACY_PICKLE)
        if data is not None:
            return _frame_from_legacy_pickle(data, legacy)
        tried.append(legacy)
    raise MissingSnapshotError(f"no stored snapshot; tried {', '.join(tried)}")


def write_frame(store: S3Store, stem: str, frame: pd.DataFrame) -> tuple[str, int]:
    """Write `frame` as `<stem>.parquet` to the write bucket; returns (key, bytes written)."""
    key = stem + PARQUET
    body = frame_to_parquet(frame)
    store.put(key, body, content_type=PARQUET_CONTENT_TYPE)
    return key, len(body)


def _asset_name(context: dg.InputContext | dg.OutputContext) -> str:
    if not context.has_asset_key:
        raise dg.Failure(
            "SplitBucketParquetIOManager stores asset outputs only; this output has no asset key"
        )
    return context.asset_key.path[-1]


class SplitBucketParquetIOManager(dg.ConfigurableIOManager):
    """Writes asset outputs (pandas DataFrames) as Parquet to the write bucket; loads inputs from the write
    bucket, the read bucket, then legacy `.pkl.gz` history (see read_frame).

    Legacy pickles are read only from `store.legacy_import_bucket`, which must be a trusted bucket: unpickling
    runs whatever code the file's author put in it.
    """

    store: dg.ResourceDependency[S3Store]

    def handle_output(
        self, context: dg.OutputContext, obj: pd.DataFrame | Mapping[str, pd.DataFrame] | None
    ) -> None:
        """Store one partition's frame; a run over several partitions (single-run backfill) returns
        {partition_key: frame} with exactly those partitions. None stores nothing.

        Dagster attaches IO-manager metadata to every partition of the run alike, so over several partitions
        it gives the run's totals and the list of keys.
        """
        if obj is None:
            return
        name = _asset_name(context)
        if not context.has_asset_partitions:
            frames: Mapping[str | None, pd.DataFrame] = {None: obj}  # type: ignore[dict-item]
        elif isinstance(obj, pd.DataFrame):
            frames = {context.asset_partition_key: obj}
        else:
            expected = set(context.asset_partition_keys)
            if not isinstance(obj, Mapping) or set(obj) != expected:
                got = sorted(obj) if isinstance(obj, Mapping) else type(obj).__name__
                raise dg.Failure(
                    f"asset {name} ran for {len(expected)} partitions and must return "
                    f"{{partition_key: DataFrame}} for exactly those; got {got}"
                )
            frames = obj
        keys, rows, size = [], 0, 0
        for partition_key, frame in frames.items():
            if frame is None:  # nothing to store for this partition (e.g. its source failed)
                continue
            if not isinstance(frame, pd.DataFrame):
                raise dg.Failure(
                    f"asset {name} returned a {type(frame).__name__}; this IO manager stores DataFrames"
                )
            key, nbytes = write_frame(self.store, key_stem(name, partition_key), frame)
            keys.append(key)
            rows += len(frame)
            size += nbytes
        context.add_output_metadata(
            {
                "s3_bucket": self.store.write_bucket,
                "s3_key": keys[0] if len(keys) == 1 else dg.MetadataValue.json(keys),
                "rows": rows,
                "bytes": size,
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | dict[str, pd.DataFrame] | None:
        """The upstream asset's frame. Several upstream partitions (or an input annotated as a dict) give
        {partition_key: frame}; an empty partition range (the first partition's "previous") gives None."""
        name = _asset_name(context)
        if not context.has_asset_partitions:
            return read_frame(self.store, key_stem(name, None))
        partition_keys = context.asset_partition_keys
        if not partition_keys:
            return None
        wants_dict = typing.get_origin(context.dagster_type.typing_type) in (dict, Mapping)
        if len(partition_keys) == 1 and not wants_dict:
            return read_frame(self.store, key_stem(name, partition_keys[0]))
        return {key: read_frame(self.store, key_stem(name, key)) for key in partition_keys}
