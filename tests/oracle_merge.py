"""FROZEN ORACLE: the merge as it was before the fast rewrite (commit 7c0df25), for equivalence tests only.

This file is a verbatim copy of `spotlake_assets/core/transforms/state.py` and `merge.py` at commit 7c0df25
(the two modules joined into one; only the imports changed). Do not edit or "fix" it: tests/test_merge_oracle.py
asserts that the fast `merge_snapshot` gives the same rows, changes and state as this one over whole desired-count
cycles, and the same stored Parquet bytes. If the merge's rules change on purpose, change the test, not this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from spotlake_assets.core.timekeys import DESIRED_COUNT_CYCLE, format_time
from spotlake_assets.core.transforms import regions
from spotlake_assets.core.transforms.eviction import IF_COLUMNS
from spotlake_assets.core.transforms.price import PRICE_COLUMNS
from spotlake_assets.core.transforms.regions import sovereign_mask

MISSING_TEXT = "N/A"

ROW_COLUMNS = [
    "InstanceTier", "InstanceType", "Region", "OndemandPrice", "SpotPrice", "Savings", "IF",
    "DesiredCount", "AvailabilityZone", "Score", "Time", "T2", "T3",
]  # fmt: skip
TEXT_COLUMNS = ["InstanceTier", "InstanceType", "Region", "AvailabilityZone", "Time", "RegionCode"]
FLOAT_COLUMNS = ["OndemandPrice", "SpotPrice", "Savings", "IF"]
INT_COLUMNS = ["DesiredCount", "Score", "T2", "T3"]
# Columns whose change makes a new point of the time series (legacy-collector.md 4.8; never Time).
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


def series_key(values: pd.Series) -> pd.Series:
    """Join-key form of a text column: missing -> 'n/a' (the published fill), stripped, case-folded."""
    # Key columns hold few distinct values among up to millions of rows: normalise each distinct value once.
    codes, uniques = pd.factorize(values.astype("string").fillna(MISSING_TEXT))
    normalised = regions.join_key(pd.Series(uniques, dtype="string")).to_numpy(dtype=object)
    return pd.Series(normalised[codes], index=values.index, dtype="string")


def with_keys(frame: pd.DataFrame, **sources: str) -> pd.DataFrame:
    """`frame` plus normalised key columns, e.g. `with_keys(df, _tier="InstanceTier")`; default TEXT_KEYS."""
    sources = sources or {key: col for key, col in TEXT_KEYS.items() if col in frame.columns}
    return frame.assign(**{key: series_key(frame[col]) for key, col in sources.items()})


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


# ---- merge.py ----

SPS_COLUMNS = [
    "DesiredCount", "RegionCodeSPS", "Region", "InstanceTypeSPS", "InstanceTier", "InstanceType",
    "AvailabilityZone", "Score", "T3", "T2",
]  # fmt: skip
ROUNDING = {"OndemandPrice": 6, "SpotPrice": 6, "Savings": 2, "IF": 1}
MISSING_NUMBER = -1
FILLS = {  # step 5
    **dict.fromkeys(["InstanceTier", "InstanceType", "Region", "AvailabilityZone"], MISSING_TEXT),
    **dict.fromkeys(["OndemandPrice", "SpotPrice", "Savings", "IF", "DesiredCount", "Score"], MISSING_NUMBER),
    **dict.fromkeys(["T2", "T3"], 0),
}


@dataclass(frozen=True, eq=False)
class MergeResult:
    """One partition's merged rows, the rows to store (`changed`) and the state for the next partition."""

    rows: pd.DataFrame
    changed: pd.DataFrame
    state: MergeState
    missing_sources: list[str]
    counts: dict[str, int] = field(default_factory=dict)


def step_below(count: int) -> int:
    """The desired count before `count` in the cycle (50 -> 45, ..., 5 -> 1, 1 -> 0)."""
    position = DESIRED_COUNT_CYCLE.index(count)
    return DESIRED_COUNT_CYCLE[position - 1] if position else 0


def round_values(frame: pd.DataFrame) -> pd.DataFrame:
    """The merge's rounding rule, so that float comparisons are exact."""
    return frame.round({col: digits for col, digits in ROUNDING.items() if col in frame.columns})


def changed_rows(rows: pd.DataFrame, last_stored: pd.DataFrame) -> pd.DataFrame:
    """The rows to store: those of new series, and those whose OndemandPrice, SpotPrice, IF, Score, T2 or T3
    differ from their series' last stored value (step 8).

    A series is (InstanceTier, InstanceType, Region, AvailabilityZone, DesiredCount), compared
    case-insensitively. `Time` and `Savings` are never compared; floats are compared exactly after
    `round_values`.
    """
    previous = with_keys(round_values(last_stored))[SERIES_KEYS + COMPARED_COLUMNS]
    joined = with_keys(round_values(rows)).merge(
        previous, on=SERIES_KEYS, how="left", suffixes=("", "_stored"), indicator=True, validate="many_to_one"
    )
    differs = joined["_merge"] == "left_only"
    for col in COMPARED_COLUMNS:
        differs |= joined[col] != joined[f"{col}_stored"]
    return rows[differs.to_numpy()].reset_index(drop=True)


def _require(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [col for col in columns if col not in frame.columns]
    if missing:
        raise ValueError(f"{source} frame lacks columns {missing}; has {list(frame.columns)}")


def _public(frame: pd.DataFrame, code_column: str) -> pd.DataFrame:
    """Rows of `frame` outside the sovereign clouds, judged by region code (legacy-collector.md 1.3)."""
    return frame[~sovereign_mask(frame[code_column]).to_numpy()]


def _first_per_key(frame: pd.DataFrame, keys: list[str], order: list[str]) -> pd.DataFrame:
    """One row per key, chosen by sorting on `order` (deterministic whatever the input row order)."""
    return frame.sort_values(keys + order, kind="stable").drop_duplicates(keys)


def _markets(
    price: pd.DataFrame | None, eviction: pd.DataFrame | None, previous: pd.DataFrame
) -> pd.DataFrame:
    """Price x IF per (tier, type, region) with a spot price (steps 1-2); a missing source is carried."""
    if price is None:
        prices = previous.drop(columns="IF")
    else:
        _require(price, PRICE_COLUMNS, "price")
        prices = _public(price.rename(columns={"armRegionName": "RegionCode"}), "RegionCode")
        prices = prices[prices["SpotPrice"].notna()]
    prices = with_keys(
        prices, _tier="InstanceTier", _type="InstanceType", _region="Region", _code="RegionCode"
    )
    prices = _first_per_key(prices, MARKET_KEYS, ["SpotPrice", "OndemandPrice", "_code"])

    if eviction is None:
        rates = with_keys(previous, _tier="InstanceTier", _type="InstanceType", _code="RegionCode")
    else:
        _require(eviction, IF_COLUMNS, "eviction")
        rates = with_keys(
            _public(eviction, "Region"), _tier="InstanceTier", _type="InstanceType", _code="Region"
        )
    rates = _first_per_key(
        rates[["_tier", "_type", "_code", "IF"]].dropna(subset=["IF"]), ["_tier", "_type", "_code"], ["IF"]
    )

    markets = prices.merge(rates, on=["_tier", "_type", "_code"], how="left")
    return round_values(markets[MARKET_COLUMNS])


def _answers(sps: pd.DataFrame | None, desired_count: int) -> pd.DataFrame:
    """This partition's SPS answers, one per workload, minus those with no SPS data (step 6)."""
    if sps is None:
        return with_keys(pd.DataFrame(columns=WORKLOAD_COLUMNS[:4] + ["Score"]))
    _require(sps, SPS_COLUMNS, "sps")
    other_counts = sorted(set(sps["DesiredCount"].dropna().astype(int)) - {desired_count})
    if other_counts:
        raise ValueError(
            f"sps frame holds desired counts {other_counts}; this partition asks {desired_count}"
        )
    answers = _public(sps, "RegionCodeSPS")[WORKLOAD_COLUMNS[:4] + ["Score"]]
    answers = answers.assign(
        AvailabilityZone=answers["AvailabilityZone"].astype("str").fillna(FILLS["AvailabilityZone"]),
        Score=answers["Score"].fillna(FILLS["Score"]).astype("int64"),
    )
    no_data = (answers["Score"] == MISSING_NUMBER) & (answers["AvailabilityZone"] == MISSING_TEXT)
    answers = with_keys(answers[~no_data])
    return _first_per_key(answers, WORKLOAD_KEYS, ["Score"])


def _workloads(previous: pd.DataFrame, answers: pd.DataFrame, desired_count: int) -> pd.DataFrame:
    """T2/T3 per workload after this partition's answers (step 7); unanswered workloads keep theirs.

    High (3) / at least Medium (2) at count c: T = max(c, T before), else T = min(step below c, T before).
    At c = 1 the step below is 0, so T3 = 0 when Score <= 2 and T2 = 0 when Score < 2. New workloads start
    from 0.
    """
    before = with_keys(previous)[WORKLOAD_KEYS + ["T2", "T3"]]
    now = answers.merge(before, on=WORKLOAD_KEYS, how="left")
    updates = {}
    for col, threshold in (("T3", 3), ("T2", 2)):
        t_before = now[col].fillna(0).astype("int64")
        rose = t_before.clip(lower=desired_count)
        fell = t_before.clip(upper=step_below(desired_count))
        updates[col] = rose.where(now["Score"] >= threshold, fell)
    now = now.assign(**updates)
    unanswered = before.merge(answers[WORKLOAD_KEYS], on=WORKLOAD_KEYS, how="left", indicator=True)
    kept = previous[(unanswered["_merge"] == "left_only").to_numpy()]
    return stack([kept, now], WORKLOAD_COLUMNS)


def _rows(
    series: pd.DataFrame, answers: pd.DataFrame, workloads: pd.DataFrame, markets: pd.DataFrame,
    desired_count: int, time: str,
) -> pd.DataFrame:  # fmt: skip
    """Every known or newly answered series with its workload's current price/IF (steps 3-6)."""
    fresh = answers.merge(with_keys(workloads)[WORKLOAD_KEYS + ["T2", "T3"]], on=WORKLOAD_KEYS, how="left")
    fresh = fresh.assign(DesiredCount=desired_count)
    carried = with_keys(series).merge(fresh[SERIES_KEYS], on=SERIES_KEYS, how="left", indicator=True)
    carried = carried[carried["_merge"] == "left_only"]
    sps_part = ["AvailabilityZone", "DesiredCount", "Score", "T2", "T3"]
    known = stack([carried, fresh], MARKET_KEYS + sps_part)

    # Published tier/type/region spelling comes from the price side (markets).
    rows = known.merge(with_keys(markets), on=MARKET_KEYS, how="left").assign(Time=time)
    rows = rows.fillna(FILLS)
    no_market = (rows[["OndemandPrice", "SpotPrice", "Savings", "IF"]] == MISSING_NUMBER).all(axis=1)
    return tidy(round_values(rows[~no_market]), ROW_COLUMNS, ROW_DTYPES, SERIES_KEYS)


def merge_snapshot(
    price: pd.DataFrame | None,
    eviction: pd.DataFrame | None,
    sps: pd.DataFrame | None,
    desired_count: int,
    data_time: datetime,
    previous_state: MergeState | None,
) -> MergeResult:
    """Merge one partition's raw snapshots (None = source missing) onto the previous partition's state.

    Same inputs give an identical result whatever the input row order; see the module docstring for the rules.
    """
    if desired_count not in DESIRED_COUNT_CYCLE:
        raise ValueError(f"desired count {desired_count} is not one of {DESIRED_COUNT_CYCLE}")
    if data_time.tzinfo is None:
        raise ValueError(f"data time {data_time.isoformat()} has no time zone; expected aware UTC")
    previous = previous_state if previous_state is not None else empty_state()
    missing = [
        name for name, frame in (("price", price), ("eviction", eviction), ("sps", sps)) if frame is None
    ]

    markets = _markets(price, eviction, previous.markets)
    answers = _answers(sps, desired_count)
    workloads = _workloads(previous.workloads, answers, desired_count)
    rows = _rows(previous.series, answers, workloads, markets, desired_count, format_time(data_time))
    changed = changed_rows(rows, previous.series)
    state = apply_changes(make_state(previous.series, workloads, markets), changed)
    new_series = changed.pipe(with_keys).merge(
        with_keys(previous.series)[SERIES_KEYS], on=SERIES_KEYS, how="left", indicator=True
    )
    counts = {
        "price_rows": 0 if price is None else len(price),
        "eviction_rows": 0 if eviction is None else len(eviction),
        "sps_rows": 0 if sps is None else len(sps),
        "rows": len(rows),
        "changed_rows": len(changed),
        "new_series": int((new_series["_merge"] == "left_only").sum()),
        "series": len(state.series),
        "workloads": len(state.workloads),
    }
    return MergeResult(rows=rows, changed=changed, state=state, missing_sources=missing, counts=counts)
