"""The state the Azure merge carries from one 10-minute partition to the next.

docs/design.md ("The merged dataset and its state") makes this state a self-dependency on the previous
partition, so it is plain data:

- `series`: the last *stored* value of every series (tier, type, region, zone, desired count), in the
  merged row columns; change detection compares against it and the merge carries Score/T2/T3 of series
  not asked now.
- `workloads`: the current T2/T3 of every workload (tier, type, region, zone), carried across the 1..50 cycle.
- `markets`: the last known price and IF of every (tier, type, region) with a spot price, so that a
  partition whose price or IF source failed can carry the last known value of that column.

Key columns keep Azure's published spelling; every comparison goes through `with_keys` (strip + case-fold), so
`NC24ads_A100_v4` and `nc24ads_a100_v4` are one key.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

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


def normalise_key(values: pd.Series) -> pd.Series:
    """Join-key form of a text column: missing -> 'n/a' (the published fill), stripped, case-folded."""
    # Key columns hold few distinct values among up to millions of rows: normalise each distinct value once.
    codes, uniques = pd.factorize(values.astype("string").fillna(MISSING_TEXT))
    normalised = regions.normalise_key(pd.Series(uniques, dtype="string")).to_numpy(dtype=object)
    return pd.Series(normalised[codes], index=values.index, dtype="string")


def with_keys(frame: pd.DataFrame, **sources: str) -> pd.DataFrame:
    """`frame` plus normalised key columns, e.g. `with_keys(df, _tier="InstanceTier")`; default TEXT_KEYS."""
    sources = sources or {key: col for key, col in TEXT_KEYS.items() if col in frame.columns}
    return frame.assign(**{key: normalise_key(frame[col]) for key, col in sources.items()})


def tidy(frame: pd.DataFrame, columns: list[str], dtypes: dict[str, str], keys: list[str]) -> pd.DataFrame:
    """`columns` of `frame` in order, with stable dtypes, sorted by normalised `keys`, index 0..n-1.

    Raises ValueError naming the key when two rows share one: every part of the state has unique keys.
    """
    keyed = with_keys(frame[columns].astype(dtypes))
    duplicated = keyed.duplicated(keys)
    if duplicated.any():
        first = keyed.loc[duplicated, keys].iloc[0].tolist()
        raise ValueError(f"duplicate key {dict(zip(keys, first, strict=True))} in merge state/rows")
    return keyed.sort_values(keys, kind="stable")[columns].reset_index(drop=True)


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
    parts = [
        getattr(state, attr).reindex(columns=STATE_FRAME_COLUMNS).assign(**{KIND_COLUMN: kind})
        for kind, (attr, _, _, _) in _PARTS.items()
    ]
    return stack([part.astype(STATE_FRAME_DTYPES) for part in parts], STATE_FRAME_COLUMNS).astype(
        STATE_FRAME_DTYPES
    )


def state_from_frame(frame: pd.DataFrame) -> MergeState:
    """Inverse of `state_to_frame`; raises ValueError naming a missing column or an unknown kind."""
    missing = [col for col in STATE_FRAME_COLUMNS if col not in frame.columns]
    if missing:
        raise ValueError(f"merge state frame lacks columns {missing}")
    unknown = sorted(set(frame[KIND_COLUMN].dropna()) - set(_PARTS)) + (
        ["<missing>"] if frame[KIND_COLUMN].isna().any() else []
    )
    if unknown:
        raise ValueError(
            f"merge state frame has unknown {KIND_COLUMN} values {unknown}; expected {list(_PARTS)}"
        )
    parts = {kind: frame[frame[KIND_COLUMN] == kind] for kind in _PARTS}
    return make_state(parts["series"], parts["workload"], parts["market"])


def apply_changes(state: MergeState, changed_rows: pd.DataFrame) -> MergeState:
    """`state` with the stored value of every series in `changed_rows` replaced by (or added as) that row."""
    kept = with_keys(state.series).merge(
        with_keys(changed_rows)[SERIES_KEYS], on=SERIES_KEYS, how="left", indicator=True
    )
    series = stack([kept[kept["_merge"] == "left_only"], changed_rows], ROW_COLUMNS)
    return MergeState(series=_tidy_part("series", series), workloads=state.workloads, markets=state.markets)
