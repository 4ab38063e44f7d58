"""The archive's rows and files, pure (docs/contract.md "The archive"): no I/O, so they test without servers.

A row of `changes` is one stored point of the DynamoDB history, with the values DynamoDB holds (a missing number as
the dataset's fill -1, or 0 for T2/T3; a missing text as `N/A`); a row of `checkpoints` is one series of a daily
checkpoint, with its `AsOf`. The files of a month are split by instance type into at most BUCKETS parts (a type's
rows are in one part) and sorted by type, region, time and series, so a scan of one type and region reads a few row
groups, and a re-run writes the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zlib
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import history_keys as keys
from .columns import FLOAT_COLUMNS, INT_COLUMNS, MISSING_TEXT, ROW_COLUMNS
from .history_items import MISSING_NUMBER  # what a missing number is stored as in DynamoDB, and so in the archive

# The record fields of the query API (resources/query_api/request.RECORD_FIELDS) without `id`.
ARCHIVE_COLUMNS = [
    "InstanceTier", "InstanceType", "Region", "AvailabilityZone",
    "OndemandPrice", "SpotPrice", "Savings", "IF", "Score", "DesiredCount", "T2", "T3", "Time",
]  # fmt: skip
CHECKPOINT_COLUMNS = ["AsOf", *ARCHIVE_COLUMNS]
TEXT_COLUMNS = [c for c in ARCHIVE_COLUMNS if c not in FLOAT_COLUMNS and c not in INT_COLUMNS]
SORT_COLUMNS = ["InstanceType", "Region", "Time", "AvailabilityZone", "DesiredCount", "InstanceTier"]
BUCKETS = 64  # at most this many parts a month: ~4.4M rows each at the emulator's drift
ROW_GROUP_ROWS = 100_000  # a type of a month is a few row groups


def _field(name: str) -> pa.Field:
    kind = pa.float64() if name in FLOAT_COLUMNS else pa.int64() if name in INT_COLUMNS else pa.string()
    return pa.field(name, kind, nullable=False)


CHANGES_SCHEMA = pa.schema([_field(c) for c in ARCHIVE_COLUMNS])
CHECKPOINTS_SCHEMA = pa.schema([pa.field("AsOf", pa.string(), nullable=False), *CHANGES_SCHEMA])


def archive_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Dataset rows (changed rows, or state rows) as the archive stores them: ARCHIVE_COLUMNS, values as DynamoDB
    holds them (fills for missing values), text as str, numbers as float64 / int64."""
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"rows for the archive lack columns {missing}")
    out = pd.DataFrame(index=range(len(rows)))
    for col in ARCHIVE_COLUMNS:
        values = rows[col].reset_index(drop=True)
        if col in TEXT_COLUMNS:
            out[col] = values.astype("object").where(values.notna(), MISSING_TEXT).astype(str)
        else:
            filled = pd.to_numeric(values, errors="raise").astype("float64").fillna(MISSING_NUMBER[col])
            out[col] = filled.astype("int64") if col in INT_COLUMNS else filled
    return out


def checkpoint_rows(state_rows: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """The series of a checkpoint as archive rows, `AsOf` first."""
    rows = archive_rows(state_rows)
    rows.insert(0, "AsOf", keys.check_time(as_of))
    return rows


def bucket_of(instance_type: str) -> int:
    """The part of a month holding an instance type (its key part's CRC-32: stable across runs and machines)."""
    return zlib.crc32(keys.key_part(instance_type, name="InstanceType").encode()) % BUCKETS


def buckets(rows: pd.DataFrame) -> pd.Series:
    """bucket_of for every row."""
    return rows["InstanceType"].map(bucket_of)


def sort_rows(rows: pd.DataFrame) -> pd.DataFrame:
    order = ["AsOf", *SORT_COLUMNS] if "AsOf" in rows.columns else SORT_COLUMNS
    return rows.sort_values(order, kind="stable").reset_index(drop=True)


def parquet_bytes(rows: pd.DataFrame) -> bytes:
    """The Parquet file of archive rows (changes or checkpoints), sorted: zstd, statistics on, no pandas metadata,
    so the same rows give the same bytes."""
    schema = CHECKPOINTS_SCHEMA if "AsOf" in rows.columns else CHANGES_SCHEMA
    table = pa.Table.from_pandas(sort_rows(rows), schema=schema, preserve_index=False).replace_schema_metadata(None)
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd", row_group_size=ROW_GROUP_ROWS, write_statistics=True)
    return out.getvalue()


def lookup_file(items: list[dict[str, Any]]) -> bytes:
    """The query API's file of one market and month: its DynamoDB items (typed JSON) sorted by sort key, gzip
    without a timestamp, so the same items give the same bytes."""
    ordered = sorted(items, key=lambda item: item["sk"]["S"])
    body = json.dumps({"items": ordered}, sort_keys=True, separators=(",", ":")).encode()
    return gzip.compress(body, compresslevel=6, mtime=0)


def read_lookup_file(data: bytes) -> list[dict[str, Any]]:
    return json.loads(gzip.decompress(data))["items"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
