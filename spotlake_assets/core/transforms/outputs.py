"""The public files of the dataset, built from frames (pure; the writer stores the bytes).

- `latest_data/latest_azure.json`: JSON records with an `id`, the fields of docs/contract.md "The time series". One row
  per workload (tier, type, region, zone), the way the web site's table shows them: the last known row of its
  series at desired count 1 (the smallest count known, until count 1 has been asked), with the workload's
  current T2/T3.
- `rawdata/azure/YYYY/MM/DD/HH-MM-SS.csv.gz`: the partition's merged rows at its desired count, section-4 columns.
- `query-selector/azure/query_selector.json`: JSON records of every (InstanceTier, InstanceType, Region) ever seen,
  sorted; it only grows.
- `query-selector/associated/association_azure.json`: the web site's query form lists (docs/web-site.md), a JSON
  array whose first element maps every instance type ever seen to `{"Region": [display names]}`; it only grows.
"""

from __future__ import annotations

import gzip
import io
import json

import pandas as pd

from ..columns import MISSING_TEXT
from .state import MARKET_KEYS, ROW_COLUMNS, WORKLOAD_KEYS, MergeState, with_keys

LATEST_FIELDS = ["id", *[c for c in ROW_COLUMNS]]
SELECTOR_FIELDS = ["InstanceTier", "InstanceType", "Region"]
# Cell texts that mean "no value": pandas' str(NaN), the dataset's missing text, empty. The site skips "nan".
NOT_A_VALUE = frozenset({"", "nan", "none", "null", MISSING_TEXT.casefold()})


def latest_frame(state: MergeState) -> pd.DataFrame:
    """Rows of the latest JSON: per workload of a listed market, the series at the smallest desired count known
    (1 once asked), with T2/T3 taken from the workload's current values."""
    # only markets still listed: a size or region gone from the price list leaves the table
    listed = with_keys(state.markets)[MARKET_KEYS].drop_duplicates()
    series = with_keys(state.series).merge(listed, on=MARKET_KEYS)
    series = series.sort_values([*WORKLOAD_KEYS, "DesiredCount"], kind="stable").drop_duplicates(WORKLOAD_KEYS)
    workloads = with_keys(state.workloads)[[*WORKLOAD_KEYS, "T2", "T3"]]
    rows = series.drop(columns=["T2", "T3"]).merge(workloads, on=WORKLOAD_KEYS, how="left")
    rows[["T2", "T3"]] = rows[["T2", "T3"]].fillna(0).astype("int64")
    return rows[ROW_COLUMNS].reset_index(drop=True)


def latest_json(state: MergeState) -> bytes:
    return latest_records(state)[0]


def latest_records(state: MergeState) -> tuple[bytes, int]:
    """The bytes of latest_azure.json and how many records they hold."""
    records = latest_frame(state).to_dict(orient="records")
    for i, record in enumerate(records):
        record["id"] = i + 1
    ordered = [{name: _plain(record[name]) for name in LATEST_FIELDS} for record in records]
    return json.dumps(ordered, separators=(",", ":"), allow_nan=False).encode(), len(records)


def snapshot_csv_gz(rows: pd.DataFrame) -> bytes:
    """Gzipped CSV of the rows, byte-identical for identical rows (no file name or time in the gzip header)."""
    text = rows[ROW_COLUMNS].to_csv(index=False, lineterminator="\n")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", filename="", mtime=0) as gz:
        gz.write(text.encode())
    return buffer.getvalue()


def merge_selector(existing: bytes | None, rows: pd.DataFrame) -> tuple[bytes, int]:
    """The selector with the rows' (tier, type, region) added; returns the bytes and how many were new."""
    known: set[tuple[str, str, str]] = set()
    if existing:
        known = {tuple(str(r[f]) for f in SELECTOR_FIELDS) for r in json.loads(existing)}  # type: ignore[misc]
    seen = set(rows[SELECTOR_FIELDS].astype(str).itertuples(index=False, name=None))
    merged = sorted(known | seen)
    body = json.dumps([dict(zip(SELECTOR_FIELDS, r, strict=True)) for r in merged], separators=(",", ":"))
    return body.encode(), len(merged) - len(known)


def merge_association(existing: bytes | None, rows: pd.DataFrame) -> tuple[bytes, int]:
    """The web site's association file with the rows' (InstanceType, Region) added; returns the bytes and how many
    (type, region) pairs were new.

    The format is the one the site's query form parses (docs/web-site.md): `[{"<InstanceType>": {"Region":
    ["<region display name>", ...]}, ...}]`, only element 0 read. Nothing is ever removed, so the file only grows
    (an existing type keeps its entry even if every region it had was "nan"); missing values ("nan", "N/A", empty,
    NaN) are left out, also those already in `existing`; everything else in `existing` (more array elements, other
    keys of an entry) is not part of the format and is dropped. Keys and regions are sorted and the JSON compact,
    so the same pairs always give the same bytes. A malformed `existing` raises ValueError rather than being
    replaced.
    """
    known = _parse_association(existing) if existing else {}
    before = sum(len(regions) for regions in known.values())
    for instance_type, region in rows[["InstanceType", "Region"]].itertuples(index=False, name=None):
        instance_type, region = _value(instance_type), _value(region)
        if instance_type is not None and region is not None:
            known.setdefault(instance_type, set()).add(region)
    body = json.dumps([{t: {"Region": sorted(known[t])} for t in sorted(known)}], separators=(",", ":"))
    return body.encode(), sum(len(regions) for regions in known.values()) - before


def _value(cell: object) -> str | None:
    """A cell as published text, or None when it holds no value."""
    if cell is None or (isinstance(cell, float) and cell != cell):  # NaN
        return None
    text = str(cell).strip()
    return None if text.casefold() in NOT_A_VALUE else text


def _parse_association(existing: bytes) -> dict[str, set[str]]:
    try:
        data = json.loads(existing)
    except ValueError as exc:
        raise ValueError(f"the existing association file is not JSON: {exc}") from exc
    if not (isinstance(data, list) and data and isinstance(data[0], dict)):
        raise ValueError("the existing association file is not a JSON array whose first element is an object")
    known: dict[str, set[str]] = {}
    for instance_type, entry in data[0].items():
        regions = entry.get("Region") if isinstance(entry, dict) else None
        if not isinstance(regions, list):
            raise ValueError(f"the existing association file has no Region array for {instance_type!r}")
        key = _value(instance_type)
        if key is not None:
            known.setdefault(key, set()).update(r for r in map(_value, regions) if r is not None)
    return known


def _plain(value: object) -> object:
    """JSON-native scalars (numpy ints and floats are not)."""
    if hasattr(value, "item"):
        return value.item()  # type: ignore[union-attr]
    return value
