"""One-off, offline conversion of the legacy collector's raw snapshots (gzip pickles) into this collector's
Parquet layout, so that backfills can replay legacy history (docs/operations.md "Importing legacy history").

Unpickling runs code chosen by the file's author. So this is never part of a Dagster run (runs read Parquet only,
from buckets other writers share): an operator runs `spotlake import-legacy` on a trusted machine, against a
legacy bucket they trust, and it writes Parquet to the environment's write bucket at the keys the IO manager
reads. SPS snapshots keep the desired count the legacy asked, in their key and rows.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from spotlake_assets.core import layout, names
from spotlake_assets.core.sps.answers import COLUMNS as SPS_COLUMNS
from spotlake_assets.core.transforms.eviction import IF_COLUMNS, empty_if_table
from spotlake_assets.core.transforms.price import PRICE_COLUMNS, empty_price_table

from .aws import describe_error, error_code
from .io_manager import PARQUET_CONTENT_TYPE, frame_to_parquet
from .s3 import S3Store

RAW_COLUMNS = {
    names.PRICE_RAW: PRICE_COLUMNS,
    names.EVICTION_RAW: IF_COLUMNS,
    names.SPS_RAW: list(SPS_COLUMNS),
}
_SPS_INTS = {"DesiredCount", "Score", "T3", "T2"}


class LegacyImportError(RuntimeError):
    pass


def conform(frame: Any, asset: str, where: str) -> pd.DataFrame:
    """The snapshot's columns in order with the dtypes new snapshots have (legacy pickles vary)."""
    if not isinstance(frame, pd.DataFrame):
        raise LegacyImportError(f"{where} holds a {type(frame).__name__}, not a pandas DataFrame")
    columns = RAW_COLUMNS[asset]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LegacyImportError(f"{where} lacks columns {missing}")
    frame = frame[columns].reset_index(drop=True)
    if asset == names.PRICE_RAW:
        return frame.astype(empty_price_table().dtypes.to_dict())
    if asset == names.EVICTION_RAW:
        return frame.astype(empty_if_table().dtypes.to_dict())
    return frame.astype({c: ("int64" if c in _SPS_INTS else "str") for c in columns})


@dataclass
class ImportReport:
    written: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # legacy objects looked for and not found
    partition: str | None = None  # the last partition converted in full


def _read_pickle(client: Any, bucket: str, key: str) -> Any | None:
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
            return None
        raise LegacyImportError(f"GetObject of s3://{bucket}/{key} failed: {describe_error(exc)}") from exc
    return pd.read_pickle(io.BytesIO(body), compression="gzip")  # trusted bucket only: see the module docstring


def _legacy_sps_keys(client: Any, bucket: str, partition_key: str) -> list[str]:
    """The legacy SPS pickles of a partition's time, whatever desired count the legacy asked."""
    prefix = layout.raw_stems_any_count(partition_key)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = (o["Key"] for page in pages for o in page.get("Contents", []))
    return sorted(key for key in keys if key.endswith(layout.LEGACY_PICKLE))


def import_partitions(
    client: Any,
    legacy_bucket: str,
    store: S3Store,
    partition_keys: Iterable[str],
    report: ImportReport | None = None,
) -> ImportReport:
    """Convert the legacy price, IF and SPS pickles of each partition (legacy keys, data time = the partition's
    end) to Parquet in `store`'s write bucket. `client` is a boto3 S3 client that can read `legacy_bucket`.
    Progress goes into `report` (a new one if None) as it is made, so an interrupted caller knows how far it got."""
    report = ImportReport() if report is None else report
    for partition_key in partition_keys:
        sources = [
            (asset, layout.legacy_pickle_key(asset, partition_key)) for asset in (names.PRICE_RAW, names.EVICTION_RAW)
        ]
        sps_keys = _legacy_sps_keys(client, legacy_bucket, partition_key)
        if sps_keys:
            sources.append((names.SPS_RAW, sps_keys[0]))
        else:
            report.missing.append(f"s3://{legacy_bucket}/{layout.raw_stems_any_count(partition_key)}*")
        for asset, key in sources:
            where = f"s3://{legacy_bucket}/{key}"
            frame = _read_pickle(client, legacy_bucket, key)
            if frame is None:
                report.missing.append(where)
                continue
            frame = conform(frame, asset, where)
            # SPS keeps the desired count the legacy asked, in its key as in its rows
            target = (
                layout.sps_frame_key(partition_key, int(frame["DesiredCount"].iloc[0]))
                if asset == names.SPS_RAW and len(frame)
                else layout.frame_key(asset, partition_key)
            )
            store.put(target, frame_to_parquet(frame), content_type=PARQUET_CONTENT_TYPE)
            report.written.append(target)
        report.partition = partition_key
    return report
