"""Raw snapshots of past partitions: Azure serves only the present, so a past partition is imported from what
was stored for it (our Parquet in the write or read bucket, or, from the trusted legacy import bucket, the legacy
collector's `.pkl.gz`), and fails clearly when nothing was."""

from __future__ import annotations

import pandas as pd
from dagster import Failure

from resources.io_manager import MissingSnapshotError, read_frame
from resources.s3 import S3Store
from spotlake_assets.core.layout import LEGACY_PICKLE, raw_key_stem
from spotlake_assets.core.sps.answers import COLUMNS as SPS_COLUMNS
from spotlake_assets.core.transforms.eviction import IF_COLUMNS, empty_if_table
from spotlake_assets.core.transforms.price import PRICE_COLUMNS, empty_price_table

RAW_COLUMNS = {
    "azure_price_raw": PRICE_COLUMNS,
    "azure_eviction_raw": IF_COLUMNS,
    "azure_sps_raw": list(SPS_COLUMNS),
}


def failure_marker_key(asset: str, partition_key: str) -> str:
    """Written instead of a snapshot when the source failed while the partition was live."""
    return raw_key_stem(asset, partition_key) + ".failed.json"


def stored_snapshot(store: S3Store, asset: str, partition_key: str) -> pd.DataFrame | None:
    """The stored raw snapshot of a partition, in the columns and types the merge expects; None when the source
    failed while the partition was live (its failure marker), so a backfill re-makes the same partial snapshot."""
    stem = raw_key_stem(asset, partition_key)
    try:
        frame = read_frame(store, stem)
    except MissingSnapshotError as exc:
        if store.get(failure_marker_key(asset, partition_key)) is not None:
            return None
        frame = _legacy_sps_any_count(store, stem) if asset == "azure_sps_raw" else None
        if frame is None:
            raise Failure(
                f"{asset} partition {partition_key} is in the past and has no stored snapshot ({exc}); Azure serves "
                "only the present, so it cannot be collected now"
                + ("" if store.legacy_import_bucket else "; set SPOTLAKE_LEGACY_IMPORT_BUCKET to import legacy files")
            ) from None
    return conform(frame, asset, f"{asset} {partition_key}")


def _legacy_sps_any_count(store: S3Store, stem: str) -> pd.DataFrame | None:
    """The legacy SPS file of that time whatever desired count the legacy asked (`HH-MM_sps_{count}.pkl.gz`)."""
    if not store.legacy_import_bucket:
        return None
    prefix = stem[: stem.rindex("_") + 1]
    found = sorted(k for k in store.list_keys(prefix, store.legacy_import_bucket) if k.endswith(LEGACY_PICKLE))
    if not found:
        return None
    legacy = found[0].removesuffix(LEGACY_PICKLE)
    # read_frame tries our Parquet first and then this stem's legacy pickle in the import bucket
    return read_frame(store, legacy)


def conform(frame: pd.DataFrame, asset: str, where: str) -> pd.DataFrame:
    """The snapshot's columns in order with the dtypes new snapshots have (legacy pickles vary)."""
    columns = RAW_COLUMNS[asset]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise Failure(f"stored snapshot {where} lacks columns {missing}")
    frame = frame[columns].reset_index(drop=True)
    if asset == "azure_price_raw":
        return frame.astype(empty_price_table().dtypes.to_dict())
    if asset == "azure_eviction_raw":
        return frame.astype(empty_if_table().dtypes.to_dict())
    ints = {"DesiredCount", "Score", "T3", "T2"}
    return frame.astype({c: ("int64" if c in ints else "str") for c in columns})
