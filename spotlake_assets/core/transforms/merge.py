"""The merge of one 10-minute partition: price x IF x SPS + T2/T3 (docs/contract.md "The merge").

The legacy merge's faults are fixed here:
- join keys are stripped and case-folded on every side, while published values keep the price API's
  spelling (`NC24ads_A100_v4`, never the lower-cased Resource Graph `nc24ads_a100_v4`);
- sovereign clouds are dropped by region code on every side (`regions.sovereign_mask`);
- T2/T3 are carried per workload (tier, type, region, zone) in the state across the whole 1..50 cycle;
- change detection compares with the last *stored* value of the same series, never with `Time`.

What a partition's rows are (docs/contract.md "The merge"): one row for every series (tier, type, region, zone,
desired count) known in the previous state or answered by this partition's SPS, with the *current* price
and IF of its (tier, type, region) and its last known Score/T2/T3; only the series at this partition's
desired count take new Score/T2/T3. So a price change shows at once in every desired count and zone.

T2/T3 of series at other desired counts: they keep the values stored with them, i.e. T2/T3 as computed
when their count was last asked. docs/contract.md says "Score, T2 and T3 change only for the series at the
partition's desired count"; copying a workload's current T2/T3 into all its counts would instead write
every count of the workload each time T2/T3 moves. The workload's current T2/T3 is in `state.workloads`.

Missing sources (input None): SPS missing -> price and IF still flow into every known series, no
Score/T2/T3 changes; price or IF missing -> that source's columns carry the last known value from
`state.markets` (nothing when there is no previous state). An empty frame is not a missing source: it says
the source has no rows.

Rounding (applied to the rows and before every comparison): prices to 6 decimals, Savings to 2, IF to 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from ..timekeys import DESIRED_COUNT_CYCLE, format_time
from .eviction import IF_COLUMNS
from .price import PRICE_COLUMNS
from .regions import sovereign_mask
from .state import (
    COMPARED_COLUMNS,
    MARKET_COLUMNS,
    MARKET_KEYS,
    MISSING_TEXT,
    ROW_COLUMNS,
    ROW_DTYPES,
    SERIES_KEYS,
    WORKLOAD_COLUMNS,
    WORKLOAD_KEYS,
    MergeState,
    apply_changes,
    empty_state,
    make_state,
    stack,
    tidy,
    with_keys,
)

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
    """Rows of `frame` outside the sovereign clouds, judged by region code (docs/contract.md "Prices", step 4)."""
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
