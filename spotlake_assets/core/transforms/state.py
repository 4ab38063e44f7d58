"""The state the Azure merge carries from one 10-minute partition to the next.

docs/design.md ("The merged dataset and its state") makes this state a self-dependency on the previous
partition, so it is plain data:

- `series`: the last *stored* value of every series (tier, type, region, zone, desired count), in the
  merged row columns; change detection compares against it and the merge carries Score/T2/T3 of series
  not asked now.
- `workloads`: the current T2/T3 of every workload (tier, type, region, zone), carried across the 1..50 cycle.
- `markets`: the last known price and IF of every (tier, type, region) with a spot price, so that a
  partition whose price or IF source failed can carry the last known value of that column.

Key columns keep Azure's published spelling; every comparison is on the normalised key (strip + case-fold), so
`NC24ads_A100_v4` and `nc24ads_a100_v4` are one key. Internally keys are integer codes (`coded_keys`): the
distinct values of a column are normalised once and a whole key becomes one int64 that sorts like the normalised
strings, so joins, sorts and duplicate checks over ~600k series are numpy operations instead of string merges.
`with_keys` gives the same keys as string columns for code that wants pandas joins on small frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

# The row columns live in a pandas-free module (the query API imports them); re-exported here.
from ..columns import FLOAT_COLUMNS as FLOAT_COLUMNS
from ..columns import INT_COLUMNS as INT_COLUMNS
from ..columns import MISSING_TEXT as MISSING_TEXT
from ..columns import ROW_COLUMNS as ROW_COLUMNS
from . import regions

TEXT_COLUMNS = ["InstanceTier", "InstanceType", "Region", "AvailabilityZone", "Time", "RegionCode"]
# Columns whose change makes a new point of the time series (docs/contract.md "The merge", step 8; never Time).
COMPARED_COLUMNS = ["OndemandPrice", "SpotPrice", "IF", "Score", "T2", "T3"]

WORKLOAD_COLUMNS = ["InstanceTier", "InstanceType", "Region", "AvailabilityZone", "T2", "T3"]
MARKET_COLUMNS = [
    "InstanceTier", "InstanceType", "Region", "RegionCode", "OndemandPrice", "SpotPrice", "Savings", "IF",
]  # fmt: skip

# Normalised join keys: name -> the published column they are derived from.
TEXT_KEYS = {
    "_tier": "InstanceTier",
    "_type": "InstanceType",
    "_region": "Region",
    "_zone": "AvailabilityZone",
}
MARKET_KEYS = ["_tier", "_type", "_region"]
WORKLOAD_KEYS = [*MARKET_KEYS, "_zone"]
SERIES_KEYS = [*WORKLOAD_KEYS, "DesiredCount"]

KIND_COLUMN = "Kind"
STATE_FRAME_COLUMNS = [KIND_COLUMN, *ROW_COLUMNS, "RegionCode"]


def _dtypes(columns: list[str], int_dtype: str) -> dict[str, str]:
    """Stable dtypes: text `str`, prices float64 (NaN = unknown), counts `int_dtype`."""
    kinds = {**dict.fromkeys(TEXT_COLUMNS + [KIND_COLUMN], "str"), **dict.fromkeys(FLOAT_COLUMNS, "float64")}
    return {col: kinds.get(col, int_dtype) for col in columns}


ROW_DTYPES = _dtypes(ROW_COLUMNS, "int64")
WORKLOAD_DTYPES = _dtypes(WORKLOAD_COLUMNS, "int64")
MARKET_DTYPES = _dtypes(MARKET_COLUMNS, "int64")
# In the single stored frame each kind leaves the others' columns empty, hence nullable integers.
STATE_FRAME_DTYPES = _dtypes(STATE_FRAME_COLUMNS, "Int64")


@dataclass(frozen=True, eq=False)
class MergeState:
    """What one partition hands to the next (see the module docstring); frames sorted by their keys."""

    series: pd.DataFrame
    workloads: pd.DataFrame
    markets: pd.DataFrame


_PARTS = {  # kind in the stored frame -> (attribute, columns, dtypes, sort keys)
    "series": ("series", ROW_COLUMNS, ROW_DTYPES, SERIES_KEYS),
    "workload": ("workloads", WORKLOAD_COLUMNS, WORKLOAD_DTYPES, WORKLOAD_KEYS),
    "market": ("markets", MARKET_COLUMNS, MARKET_DTYPES, MARKET_KEYS),
}


def text_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, labels): the key form of `values[i]` is `labels[codes[i]]`; labels may repeat (two spellings of one
    key). Key form: missing -> 'n/a' (the published fill), stripped, case-folded."""
    if not isinstance(values.dtype, pd.StringDtype):
        values = values.astype("string")
    # Key columns hold few distinct values among up to millions of rows: normalise each distinct value once.
    codes, uniques = pd.factorize(values)
    labels = regions.join_key(pd.Series(uniques, dtype="string")).to_numpy(dtype=object)
    missing = codes < 0
    if missing.any():
        codes = np.where(missing, len(labels), codes)
        labels = np.append(labels, regions.join_key(pd.Series([MISSING_TEXT])).iloc[0])
    return codes, labels


def series_key(values: pd.Series) -> pd.Series:
    """Series-key form of a text column: `regions.join_key`, with a missing value as 'n/a' (the published fill),
    so that a row with a missing tier or zone still has a series."""
    codes, labels = text_codes(values)
    keys = pa.array(labels, type=pa.large_string()).take(pa.array(codes, type=pa.int64()))
    return pd.Series(pd.array(keys, dtype="string"), index=values.index)


def with_keys(frame: pd.DataFrame, **sources: str) -> pd.DataFrame:
    """`frame` plus normalised key columns, e.g. `with_keys(df, _tier="InstanceTier")`; default TEXT_KEYS."""
    sources = sources or {key: col for key, col in TEXT_KEYS.items() if col in frame.columns}
    return frame.assign(**{key: series_key(frame[col]) for key, col in sources.items()})


def shared_codes(coded: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[list[np.ndarray], int]:
    """Codes of several `text_codes` results in one vocabulary numbered in sorted order of the key strings, and
    the vocabulary's size."""
    vocabulary = pd.Index(np.unique(np.concatenate([labels for _, labels in coded] + [np.array([], dtype=object)])))
    return [vocabulary.get_indexer(labels)[codes] for codes, labels in coded], max(len(vocabulary), 1)


def shared_numbers(columns: Sequence[pd.Series]) -> tuple[list[np.ndarray], int]:
    """Codes of plain (numeric) key columns numbered in sorted order of their values, and how many there are."""
    values = [col.to_numpy() for col in columns]
    vocabulary = np.unique(np.concatenate(values)) if values else np.array([])
    return [np.searchsorted(vocabulary, v) for v in values], max(len(vocabulary), 1)


def combine(parts: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """One int64 per row from (codes, number of codes) key parts, ordered part by part (mixed radix)."""
    span = 1
    for _, size in parts:
        span *= size
    if span >= 2**63:
        raise OverflowError("merge keys have too many distinct values to code in 64 bits")
    whole = np.zeros(len(parts[0][0]) if parts else 0, dtype=np.int64)
    for codes, size in parts:
        whole = whole * size + codes
    return whole


def coded_keys(frames: Sequence[pd.DataFrame], keys: Sequence[str]) -> list[np.ndarray]:
    """One int64 per row of each frame for `keys` (TEXT_KEYS names, normalised, or plain columns such as
    DesiredCount), comparable across the frames: equal exactly when the normalised keys are equal, and ordered
    like them (key by key, strings in code-point order, as `sort_values` orders them)."""
    parts: list[list[tuple[np.ndarray, int]]] = [[] for _ in frames]
    for key in keys:
        if key in TEXT_KEYS:
            codes, size = shared_codes([text_codes(frame[TEXT_KEYS[key]]) for frame in frames])
        else:
            codes, size = shared_numbers([frame[key] for frame in frames])
        for frame_parts, frame_codes in zip(parts, codes, strict=True):
            frame_parts.append((frame_codes, size))
    return [combine(frame_parts) for frame_parts in parts]


def _raise_duplicate(frame: pd.DataFrame, keys: list[str]) -> None:
    """The error of a frame whose normalised `keys` repeat, naming the first repeated key."""
    keyed = with_keys(frame)
    duplicated = keyed.duplicated(keys)
    first = keyed.loc[duplicated, keys].iloc[0].tolist()
    raise ValueError(f"duplicate key {dict(zip(keys, first, strict=True))} in merge state/rows")


def is_increasing(key: np.ndarray) -> bool:
    """Strictly increasing: sorted by the key and no key twice."""
    return bool((key[1:] > key[:-1]).all())


def tidy(frame: pd.DataFrame, columns: list[str], dtypes: dict[str, str], keys: list[str]) -> pd.DataFrame:
    """`columns` of `frame` in order, with stable dtypes, sorted by normalised `keys`, index 0..n-1.

    Raises ValueError naming the key when two rows share one: every part of the state has unique keys.
    """
    out = frame[columns].astype(dtypes)
    [key] = coded_keys([out], keys)
    if not is_increasing(key):
        order = np.argsort(key, kind="stable")
        if not is_increasing(key[order]):
            _raise_duplicate(out, keys)
        out = out.take(order)
    return out.reset_index(drop=True)


def _arrow_text(values: pd.Series) -> pa.ChunkedArray:
    """A text column as Arrow large strings (missing -> null), without copying an Arrow-backed column."""
    if not isinstance(values.dtype, pd.StringDtype):
        values = values.astype("str")
    array = pa.array(values, from_pandas=True)  # an Array, or a ChunkedArray when the column has several chunks
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    return pa.chunked_array([chunk.cast(pa.large_string()) for chunk in chunks], type=pa.large_string())


def take_rows(
    parts: Sequence[pd.DataFrame], index: np.ndarray, columns: list[str], dtypes: dict[str, str]
) -> pd.DataFrame:
    """Rows of the parts stacked one under the other, picked by `index` (positions in the stack), as a frame of
    `columns` with `dtypes`. Column by column with numpy and Arrow takes: a frame take over ~600k rows with text
    columns is several times slower."""
    data = {}
    for col in columns:
        if dtypes[col] == "str":
            chunks = [chunk for part in parts for chunk in _arrow_text(part[col]).chunks]
            taken = pa.chunked_array(chunks, type=pa.large_string()).take(pa.array(index, type=pa.int64()))
            data[col] = pd.array(taken, dtype="str")
        else:
            data[col] = np.concatenate([part[col].to_numpy() for part in parts])[index]
    return pd.DataFrame(data, columns=columns, copy=False).astype({col: dtypes[col] for col in columns})


def stack(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """`columns` of the non-empty `parts` one under the other (concat of empty frames blurs dtypes)."""
    filled = [part[columns] for part in parts if len(part)]
    return pd.concat(filled, ignore_index=True) if filled else pd.DataFrame(columns=columns)


def _tidy_part(kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    _, columns, dtypes, keys = _PARTS[kind]
    return tidy(frame, columns, dtypes, keys)


def make_state(series: pd.DataFrame, workloads: pd.DataFrame, markets: pd.DataFrame) -> MergeState:
    """A state with its frames in canonical form (column order, dtypes, sorted, unique keys)."""
    return MergeState(
        series=_tidy_part("series", series),
        workloads=_tidy_part("workload", workloads),
        markets=_tidy_part("market", markets),
    )


def empty_state() -> MergeState:
    """The state before the first partition: nothing known."""
    parts = {kind: pd.DataFrame(columns=columns) for kind, (_, columns, _, _) in _PARTS.items()}
    return make_state(parts["series"], parts["workload"], parts["market"])


def state_to_frame(state: MergeState) -> pd.DataFrame:
    """The state as one Parquet-friendly frame: the parts stacked, told apart by the `Kind` column."""
    parts = [_frame_part(kind, getattr(state, attr)) for kind, (attr, _, _, _) in _PARTS.items()]
    return stack(parts, STATE_FRAME_COLUMNS).astype(STATE_FRAME_DTYPES)


def _frame_part(kind: str, part: pd.DataFrame) -> pd.DataFrame:
    """One part in the stored frame's columns and dtypes, the other parts' columns empty. The same frame as
    `part.reindex(columns=STATE_FRAME_COLUMNS).assign(Kind=kind).astype(STATE_FRAME_DTYPES)`, without turning
    ~600k missing or repeated values into text one by one."""
    n = len(part)
    data = {}
    for col in STATE_FRAME_COLUMNS:
        dtype = STATE_FRAME_DTYPES[col]
        if col == KIND_COLUMN:
            data[col] = pd.array(pa.repeat(pa.scalar(kind, type=pa.large_string()), n), dtype=dtype)
        elif col in part.columns:
            data[col] = part[col].astype(dtype).array
        elif dtype == "str":
            data[col] = pd.array(pa.nulls(n, type=pa.large_string()), dtype=dtype)
        elif dtype == "Int64":
            data[col] = pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
        else:
            data[col] = pd.array(np.full(n, np.nan), dtype=dtype)
    return pd.DataFrame(data, columns=STATE_FRAME_COLUMNS, copy=False)


def state_from_frame(frame: pd.DataFrame) -> MergeState:
    """Inverse of `state_to_frame`; raises ValueError naming a missing column or an unknown kind."""
    missing = [col for col in STATE_FRAME_COLUMNS if col not in frame.columns]
    if missing:
        raise ValueError(f"merge state frame lacks columns {missing}")
    kinds = frame[KIND_COLUMN]
    unknown = sorted(set(kinds.dropna().unique()) - set(_PARTS)) + (["<missing>"] if kinds.isna().any() else [])
    if unknown:
        raise ValueError(
            f"merge state frame has unknown {KIND_COLUMN} values {unknown}; expected {list(_PARTS)}"
        )
    parts = {kind: _rows_of_kind(frame, (kinds == kind).to_numpy()) for kind in _PARTS}
    return make_state(parts["series"], parts["workload"], parts["market"])


def _rows_of_kind(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """`frame[mask]`; a slice (no copy) when the rows are one run, as `state_to_frame` writes them."""
    rows = np.flatnonzero(mask)
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return frame.iloc[rows[0] : rows[-1] + 1]
    return frame[mask]


def replace_series(
    series: pd.DataFrame, series_key: np.ndarray, changed: pd.DataFrame, changed_key: np.ndarray
) -> pd.DataFrame:
    """Tidy `series` (keys `series_key`, strictly increasing) with the rows of `changed` (keys `changed_key`,
    no key twice) replacing those of the same key or added."""
    position = np.searchsorted(series_key, changed_key)
    found = position < len(series_key)
    found[found] = series_key[position[found]] == changed_key[found]
    if found.all():
        return _overwrite(series, position, changed)
    kept = np.ones(len(series_key), dtype=bool)
    kept[position[found]] = False
    kept_index = np.flatnonzero(kept)
    # both runs are sorted, so the stable sort is a linear merge of the two
    order = np.argsort(np.concatenate([series_key[kept_index], changed_key]), kind="stable")
    index = np.concatenate([kept_index, len(series_key) + np.arange(len(changed_key))])[order]
    return take_rows([series, changed], index, ROW_COLUMNS, ROW_DTYPES)


def _overwrite(series: pd.DataFrame, position: np.ndarray, changed: pd.DataFrame) -> pd.DataFrame:
    """`series` with row `position[i]` replaced by row i of `changed` (no new series: same rows, same order).

    The common case once every desired count has been asked: numbers are copied and overwritten in place, and a
    text column whose replaced values are unchanged (usually all but `Time`) is reused as it is."""
    data = {}
    replace = len(series) + np.arange(len(changed))
    for col in ROW_COLUMNS:
        if ROW_DTYPES[col] == "str":
            before, after = _arrow_text(series[col]), _arrow_text(changed[col])
            if before.take(pa.array(position, type=pa.int64())).combine_chunks().equals(after.combine_chunks()):
                data[col] = series[col].astype("str")
                continue
            index = np.arange(len(series))
            index[position] = replace
            both = pa.chunked_array([*before.chunks, *after.chunks], type=pa.large_string())
            data[col] = pd.array(both.take(pa.array(index, type=pa.int64())), dtype="str")
        else:
            values = series[col].to_numpy(dtype=ROW_DTYPES[col], copy=True)
            values[position] = changed[col].to_numpy(dtype=ROW_DTYPES[col])
            data[col] = values
    return pd.DataFrame(data, columns=ROW_COLUMNS, copy=False).astype(ROW_DTYPES)


def apply_changes(state: MergeState, changed_rows: pd.DataFrame) -> MergeState:
    """`state` with the stored value of every series in `changed_rows` replaced by (or added as) that row."""
    series = state.series.astype(ROW_DTYPES)
    changed = changed_rows[ROW_COLUMNS].astype(ROW_DTYPES)
    series_key, changed_key = coded_keys([series, changed], SERIES_KEYS)
    if not is_increasing(series_key):  # not a tidy series frame: make it one (raises on a repeated key)
        series = _tidy_part("series", series)
        series_key, changed_key = coded_keys([series, changed], SERIES_KEYS)
    order = np.argsort(changed_key, kind="stable")
    if not is_increasing(changed_key[order]):
        _raise_duplicate(changed, SERIES_KEYS)
    changed = changed.take(order).reset_index(drop=True)
    return MergeState(
        series=replace_series(series, series_key, changed, changed_key[order]),
        workloads=state.workloads,
        markets=state.markets,
    )
