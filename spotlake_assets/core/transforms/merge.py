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
the source has no rows. A market that had an IF and is missing from this partition's eviction answer keeps its
last IF; when more than MAX_IF_LOST_SHARE of them are missing, the eviction source counts as missing.

Rounding (applied to the rows and before every comparison): prices to 6 decimals, Savings to 2, IF to 1.

How (speed): the state holds ~600k series at full scale, so every step on series works on integer codes of the
normalised keys (`state.coded_keys`): a series key is one int64 that sorts like the normalised strings, the tidy
state is sorted by it, and "join", "anti-join" and "sorted union" become `searchsorted` and a stable merge of two
sorted runs. Text columns are gathered with Arrow takes. Small frames (price, IF, SPS answers, workloads) still
use the same codes. tests/oracle_merge.py keeps the straightforward pandas version this one must equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from ..sps.answers import COLUMNS as SCORE_ROW_COLUMNS
from ..timekeys import DESIRED_COUNT_CYCLE, format_time
from .eviction import IF_COLUMNS
from .price import PRICE_COLUMNS
from .regions import sovereign_mask
from .state import (
    COMPARED_COLUMNS,
    MARKET_COLUMNS,
    MARKET_DTYPES,
    MARKET_KEYS,
    MISSING_TEXT,
    ROW_COLUMNS,
    ROW_DTYPES,
    SERIES_KEYS,
    WORKLOAD_COLUMNS,
    WORKLOAD_DTYPES,
    WORKLOAD_KEYS,
    MergeState,
    coded_keys,
    combine,
    empty_state,
    is_increasing,
    replace_series,
    shared_codes,
    shared_numbers,
    take_rows,
    text_codes,
    tidy,
)

SPS_COLUMNS = list(SCORE_ROW_COLUMNS)  # the SPS snapshot's columns (spotlake_assets/core/sps/answers.py)
ROUNDING = {"OndemandPrice": 6, "SpotPrice": 6, "Savings": 2, "IF": 1}
MISSING_NUMBER = -1
FILLS = {  # step 5
    **dict.fromkeys(["InstanceTier", "InstanceType", "Region", "AvailabilityZone"], MISSING_TEXT),
    **dict.fromkeys(["OndemandPrice", "SpotPrice", "Savings", "IF", "DesiredCount", "Score"], MISSING_NUMBER),
    **dict.fromkeys(["T2", "T3"], 0),
}
PRICE_VALUES = ["OndemandPrice", "SpotPrice", "Savings", "IF"]
# When more than this share of the markets that had an IF have none in a partition's answer, the eviction source
# counts as failed (missing): an answer that partial is not Azure dropping a few sizes.
MAX_IF_LOST_SHARE = 0.1


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


def _rounded(frame: pd.DataFrame, col: str) -> np.ndarray:
    """One column of `round_values(frame)` as an array."""
    values = frame[col]
    return (values.round(ROUNDING[col]) if col in ROUNDING else values).to_numpy()


def _differs(rows: pd.DataFrame, stored: pd.DataFrame, stored_index: np.ndarray) -> np.ndarray:
    """Which rows are new (`stored_index` -1) or differ in a compared column from `stored` row `stored_index`."""
    found = stored_index >= 0
    differs = ~found
    changed_found = np.zeros(int(found.sum()), dtype=bool)
    for col in COMPARED_COLUMNS:
        changed_found |= _rounded(rows, col)[found] != _rounded(stored, col)[stored_index[found]]
    differs[found] = changed_found
    return differs


def _positions(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of each of `keys` in the strictly increasing `sorted_keys`, -1 where absent."""
    position = np.searchsorted(sorted_keys, keys)
    found = position < len(sorted_keys)
    found[found] = sorted_keys[position[found]] == keys[found]
    return np.where(found, position, -1)


def changed_rows(rows: pd.DataFrame, last_stored: pd.DataFrame) -> pd.DataFrame:
    """The rows to store: those of new series, and those whose OndemandPrice, SpotPrice, IF, Score, T2 or T3
    differ from their series' last stored value (step 8).

    A series is (InstanceTier, InstanceType, Region, AvailabilityZone, DesiredCount), compared
    case-insensitively. `Time` and `Savings` are never compared; floats are compared exactly after
    `round_values`.
    """
    rows_key, stored_key = coded_keys([rows, last_stored], SERIES_KEYS)
    order = np.argsort(stored_key, kind="stable")
    if not is_increasing(stored_key[order]):
        raise pd.errors.MergeError("Merge keys are not unique in right dataset; not a many-to-one merge")
    position = _positions(stored_key[order], rows_key)
    stored_index = np.where(position >= 0, order[position], -1)
    return rows[_differs(rows, last_stored, stored_index)].reset_index(drop=True)


def _require(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [col for col in columns if col not in frame.columns]
    if missing:
        raise ValueError(f"{source} frame lacks columns {missing}; has {list(frame.columns)}")


def _public(frame: pd.DataFrame, code_column: str) -> pd.DataFrame:
    """Rows of `frame` outside the sovereign clouds, judged by region code (docs/contract.md "Prices", step 4)."""
    return frame[~sovereign_mask(frame[code_column]).to_numpy()]


def _first_per_key(key: np.ndarray, *order: np.ndarray) -> np.ndarray:
    """Positions of one row per `key`, the first by `order` (arrays, first one most significant; NaN last), ties
    in row order: deterministic whatever the input row order. The positions are in key order."""
    by = np.lexsort((*reversed(order), key))  # lexsort is stable and puts NaN last
    first = np.ones(len(by), dtype=bool)
    first[1:] = key[by][1:] != key[by][:-1]
    return by[first]


def _markets(
    price: pd.DataFrame | None, eviction: pd.DataFrame | None, previous: pd.DataFrame
) -> pd.DataFrame:
    """Price x IF per (tier, type, region) with a spot price (steps 1-2); a missing source is carried.

    Per market the row with the lowest spot price, then on-demand price, then region code; per (tier, type,
    region code) the lowest IF; joined case-insensitively on (tier, type, region code)."""
    if price is None:
        prices = previous.drop(columns="IF")
    else:
        _require(price, PRICE_COLUMNS, "price")
        prices = _public(price.rename(columns={"armRegionName": "RegionCode"}), "RegionCode")
        prices = prices[prices["SpotPrice"].notna()]
    if eviction is None:
        rates = previous[["InstanceTier", "InstanceType", "RegionCode", "IF"]].rename(columns={"RegionCode": "Region"})
    else:
        _require(eviction, IF_COLUMNS, "eviction")
        rates = _public(eviction, "Region")
    rates = rates[rates["IF"].notna()]

    tiers, n_tiers = shared_codes([text_codes(prices["InstanceTier"]), text_codes(rates["InstanceTier"])])
    types, n_types = shared_codes([text_codes(prices["InstanceType"]), text_codes(rates["InstanceType"])])
    regions, n_regions = shared_codes([text_codes(prices["RegionCode"]), text_codes(rates["Region"])])
    names, n_names = shared_codes([text_codes(prices["Region"])])
    market = combine([(tiers[0], n_tiers), (types[0], n_types), (names[0], n_names)])
    chosen = _first_per_key(
        market, prices["SpotPrice"].to_numpy(dtype=float), prices["OndemandPrice"].to_numpy(dtype=float), regions[0]
    )
    rate_key, rate_of_price = (
        combine([(tiers[i], n_tiers), (types[i], n_types), (regions[i], n_regions)]) for i in (1, 0)
    )
    rate_rows = _first_per_key(rate_key, rates["IF"].to_numpy(dtype=float))
    rate = _positions(rate_key[rate_rows], rate_of_price[chosen])
    markets = prices.iloc[chosen][MARKET_COLUMNS[:-1]].reset_index(drop=True)
    if_values = np.full(len(chosen), np.nan)
    if_values[rate >= 0] = rates["IF"].to_numpy(dtype=float)[rate_rows[rate[rate >= 0]]]
    markets["IF"] = if_values
    return tidy(round_values(markets), MARKET_COLUMNS, MARKET_DTYPES, MARKET_KEYS)


def _carry_if(markets: pd.DataFrame, previous: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """`markets` where a market that had an IF in `previous` and has none now keeps its last IF (an eviction answer
    that misses it says nothing new about it); returns them, how many were carried and how many had an IF."""
    had = previous[previous["IF"].notna()]
    if markets.empty or had.empty:
        return markets, 0, len(had)
    now_key, had_key = coded_keys([markets, had], MARKET_KEYS)
    position = _positions(had_key, now_key)  # `had` is tidy: sorted by its key
    carry = markets["IF"].isna().to_numpy() & (position >= 0)
    if not carry.any():
        return markets, 0, len(had)
    values = markets["IF"].to_numpy(dtype=float, copy=True)
    values[carry] = had["IF"].to_numpy(dtype=float)[position[carry]]
    return markets.assign(IF=values), int(carry.sum()), len(had)


def _answers(sps: pd.DataFrame | None, desired_count: int) -> pd.DataFrame:
    """This partition's SPS answers, one per workload (the lowest Score, then the first row, when a workload is
    answered twice), minus those with no SPS data (step 6); sorted by workload key, index 0..n-1."""
    if sps is None:
        return pd.DataFrame(
            {**{col: pd.Series(dtype="str") for col in WORKLOAD_COLUMNS[:4]}, "Score": pd.Series(dtype="int64")}
        )
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
    answers = answers[~no_data.to_numpy()]
    [key] = coded_keys([answers], WORKLOAD_KEYS)
    return answers.take(_first_per_key(key, answers["Score"].to_numpy())).reset_index(drop=True)


def _workloads(
    previous: pd.DataFrame, answers: pd.DataFrame, desired_count: int
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """T2/T3 per workload after this partition's answers (step 7), and T2/T3 of each answer.

    High (3) / at least Medium (2) at count c: T = max(c, T before), else T = min(step below c, T before).
    At c = 1 the step below is 0, so T3 = 0 when Score <= 2 and T2 = 0 when Score < 2. New workloads start
    from 0; unanswered workloads keep theirs. The answers' spelling replaces the stored one.
    """
    previous = previous.astype(WORKLOAD_DTYPES)
    before_key, answer_key = coded_keys([previous, answers], WORKLOAD_KEYS)
    if not is_increasing(before_key):  # not tidy (a hand-made state): sort it, refusing repeated keys
        previous = tidy(previous, WORKLOAD_COLUMNS, WORKLOAD_DTYPES, WORKLOAD_KEYS)
        before_key, answer_key = coded_keys([previous, answers], WORKLOAD_KEYS)
    position = _positions(before_key, answer_key)
    found = position >= 0
    score = answers["Score"].to_numpy()
    now = {}
    for col, threshold in (("T3", 3), ("T2", 2)):
        t_before = np.zeros(len(answers), dtype=np.int64)
        t_before[found] = previous[col].to_numpy()[position[found]]
        rose = np.maximum(t_before, desired_count)
        fell = np.minimum(t_before, step_below(desired_count))
        now[col] = np.where(score >= threshold, rose, fell)
    answered = answers[WORKLOAD_COLUMNS[:4]].assign(T2=now["T2"], T3=now["T3"])
    kept = np.ones(len(previous), dtype=bool)
    kept[position[found]] = False
    kept_index = np.flatnonzero(kept)
    order = np.argsort(np.concatenate([before_key[kept_index], answer_key]), kind="stable")
    index = np.concatenate([kept_index, len(previous) + np.arange(len(answers))])[order]
    return take_rows([previous, answered], index, WORKLOAD_COLUMNS, WORKLOAD_DTYPES), now


def _series_codes(series: pd.DataFrame, fresh: pd.DataFrame, markets: pd.DataFrame):  # noqa: ANN202
    """Series keys of `series` and `fresh`, market keys of `markets`, and the divisor that turns a series key
    into the market key of its (tier, type, region): all three share one vocabulary per key part."""
    market_parts: list[list[tuple[np.ndarray, int]]] = [[], [], []]
    for col in ("InstanceTier", "InstanceType", "Region"):
        codes, size = shared_codes([text_codes(frame[col]) for frame in (series, fresh, markets)])
        for parts, frame_codes in zip(market_parts, codes, strict=True):
            parts.append((frame_codes, size))
    zones, n_zones = shared_codes([text_codes(frame["AvailabilityZone"]) for frame in (series, fresh)])
    counts, n_counts = shared_numbers([series["DesiredCount"], fresh["DesiredCount"]])
    series_key, fresh_key = (
        combine([*parts, (zone, n_zones), (count, n_counts)])
        for parts, zone, count in zip(market_parts[:2], zones, counts, strict=True)
    )
    return series_key, fresh_key, combine(market_parts[2]), n_zones * n_counts


def _merge_series(
    series: pd.DataFrame, fresh: pd.DataFrame, markets: pd.DataFrame, time: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, int]:
    """(rows, changed, series after the changes, new series) (steps 3-6 and 8).

    Rows: every series of the state not answered now ("carried", with its stored Score/T2/T3) and every answer
    of this partition (`fresh`), with the current price and IF of its market; the published tier/type/region
    spelling comes from the price side. Rows whose price and IF are all missing are dropped.
    """
    series = series.astype(ROW_DTYPES)
    series_key, fresh_key, market_key, per_market = _series_codes(series, fresh, markets)
    if not is_increasing(series_key):  # not tidy (a hand-made state): sort it, refusing repeated keys
        series = tidy(series, ROW_COLUMNS, ROW_DTYPES, SERIES_KEYS)
        series_key, fresh_key, market_key, per_market = _series_codes(series, fresh, markets)

    # known series in key order: the carried ones and the fresh ones, two sorted runs merged
    fresh_stored = _positions(series_key, fresh_key)
    carried = np.ones(len(series), dtype=bool)
    carried[fresh_stored[fresh_stored >= 0]] = False
    carried_index = np.flatnonzero(carried)
    order = np.argsort(np.concatenate([series_key[carried_index], fresh_key]), kind="stable")
    known_key = np.concatenate([series_key[carried_index], fresh_key])[order]
    known_index = np.concatenate([carried_index, len(series) + np.arange(len(fresh))])[order]  # in [series, fresh]
    stored_index = np.concatenate([carried_index, fresh_stored])[order]  # in series, -1 for a new series

    # price x IF of each known series (missing -> -1), then drop the series whose four values are all missing
    market = _positions(market_key, known_key // per_market)
    has_market = market >= 0
    values = {}
    for col in PRICE_VALUES:
        column = np.full(len(known_key), np.nan)
        column[has_market] = markets[col].to_numpy()[market[has_market]]
        values[col] = np.where(np.isnan(column), float(MISSING_NUMBER), column).round(ROUNDING[col])
    kept = ~np.logical_and.reduce([values[col] == MISSING_NUMBER for col in PRICE_VALUES])
    kept_index = np.flatnonzero(kept)

    published = markets[["InstanceTier", "InstanceType", "Region"]].fillna(MISSING_TEXT)
    sps_part = ["AvailabilityZone", "DesiredCount", "Score", "T2", "T3"]
    columns = {
        **take_rows([published], market[kept_index], list(published.columns), ROW_DTYPES),
        **take_rows([series[sps_part].fillna(FILLS), fresh[sps_part].fillna(FILLS)], known_index[kept_index],
                    sps_part, ROW_DTYPES),
        "Time": pd.array(pa.repeat(pa.scalar(time, type=pa.large_string()), len(kept_index)), dtype="str"),
        **{col: values[col][kept_index] for col in PRICE_VALUES},
    }  # fmt: skip
    rows = pd.DataFrame({col: columns[col] for col in ROW_COLUMNS}).astype(ROW_DTYPES)

    rows_stored = stored_index[kept_index]
    differs = _differs(rows, series, rows_stored)
    changed_index = np.flatnonzero(differs)
    changed = rows.take(changed_index).reset_index(drop=True)
    new_series = int((rows_stored[changed_index] < 0).sum())
    after = replace_series(series, series_key, changed, known_key[kept_index][changed_index])
    return rows, changed, after, new_series


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
    if_carried = 0
    if eviction is not None:
        markets, if_carried, had_if = _carry_if(markets, previous.markets)
        if had_if and if_carried / had_if > MAX_IF_LOST_SHARE:
            missing.append("eviction")
    answers = _answers(sps, desired_count)
    workloads, t_now = _workloads(previous.workloads, answers, desired_count)
    fresh = answers.assign(DesiredCount=np.full(len(answers), desired_count, dtype=np.int64), **t_now)
    rows, changed, series, new_series = _merge_series(previous.series, fresh, markets, format_time(data_time))
    state = MergeState(series=series, workloads=workloads, markets=markets)
    counts = {
        "price_rows": 0 if price is None else len(price),
        "eviction_rows": 0 if eviction is None else len(eviction),
        "sps_rows": 0 if sps is None else len(sps),
        "rows": len(rows),
        "changed_rows": len(changed),
        "new_series": new_series,
        "series": len(state.series),
        "workloads": len(state.workloads),
        "if_carried": if_carried,
    }
    return MergeResult(rows=rows, changed=changed, state=state, missing_sources=missing, counts=counts)
