"""The legacy collector's merge algorithm, re-implemented as a speed baseline (not used by the product).

It follows the legacy Azure collector of github.com/ddps-lab/spotlake, `collector/spot-dataset/azure/`:
- `batch-test/merge/merge_data.py` (`merge_if_saving_price_sps_df` and `main`: price x IF, outer join with SPS,
  fills, drops, then `compare_max_instance` and `compare_sps` against the previous all-data frame),
- `batch-test/merge/compare_data.py` (`compare_max_instance`: T2/T3 by a left merge on the previous frame and
  `np.where`; `compare_sps`: change detection by joining every row's key and feature columns into ':'-separated
  strings (`.astype(str).agg(':'.join, axis=1)`) and a left merge on the key string),
- `lambda/current_collector/utils/merge_df.py` (`merge_price_saving_if_df`: the outer price x IF join on the
  price's `armRegionName`, keeping the rows with a spot price).

The legacy pandas operations are kept (outer merges on key columns, `fillna` dicts, `pd.to_numeric`/`np.where`,
':'-joined string keys and features, `isin` on those strings, `sort_values`), with one exception: the ':'-joined
strings are built column by column (`str.cat`) instead of row by row (`agg(':'.join, axis=1)`). They are the same
strings, but under pandas 3 the row-wise form costs ~150 us a row, minutes per partition at 620k series (it ran
on older pandas in production); keeping it would measure pandas 3's row iteration rather than the legacy
algorithm, and make the baseline tens of times slower than the ~11 s the legacy takes here.

Its faults (docs/contract.md "The merge") are fixed only as far as needed to give exactly the rows, changes and
state of `spotlake_assets.core.transforms.merge` on the same inputs, because a speed baseline must compute the same
thing:
- keys are stripped and case-folded on every side (the legacy lower-cased some of them); missing keys read 'N/A';
- sovereign clouds are dropped by region code; one row per market / IF key / workload, chosen as ours chooses;
- T2/T3 are looked up per workload (tier, type, region, zone) in a carried workloads frame instead of per
  (type, region, zone, desired count) in the previous run, and the legacy's extra resets on the previous
  Score are left out (the spec's rule only);
- change detection compares with the last stored value of each series (a carried series frame) instead of the
  previous run, and leaves `Time` out of the compared features;
- the merged rows are every known series (carried ones keep their stored Score/T2/T3), not only this run's count.
The same container (`MergeState`) and column constants as the product are used so that results compare directly.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from spotlake_assets.core.timekeys import format_time
from spotlake_assets.core.transforms.state import (
    MARKET_COLUMNS,
    MARKET_DTYPES,
    ROW_COLUMNS,
    ROW_DTYPES,
    WORKLOAD_COLUMNS,
    WORKLOAD_DTYPES,
    MergeState,
)

SOVEREIGN_PREFIXES = ("usgov", "usdod", "ussec", "usnat", "china")
SOVEREIGN_CODES = ["germanycentral", "germanynortheast"]
FALLBACK = {50: 45, 45: 40, 40: 35, 35: 30, 30: 25, 25: 20, 20: 15, 15: 10, 10: 5, 5: 1, 1: 0}
ROUNDING = {"OndemandPrice": 6, "SpotPrice": 6, "Savings": 2, "IF": 1}
WORKLOAD_COLS = ["_tier", "_type", "_region", "_zone", "DesiredCount"]
FEATURE_COLS = ["OndemandPrice", "SpotPrice", "IF", "Score", "T2", "T3"]


def key(column: pd.Series) -> pd.Series:
    """The join form of a key column: 'N/A' when missing, stripped, case-folded."""
    return column.astype(object).where(column.notna(), "N/A").astype(str).str.strip().str.casefold()


def sovereign(codes: pd.Series) -> pd.Series:
    codes = key(codes)
    return codes.str.startswith(SOVEREIGN_PREFIXES) | codes.isin(SOVEREIGN_CODES)


def empty_state() -> MergeState:
    return MergeState(
        series=pd.DataFrame(columns=ROW_COLUMNS).astype(ROW_DTYPES),
        workloads=pd.DataFrame(columns=WORKLOAD_COLUMNS).astype(WORKLOAD_DTYPES),
        markets=pd.DataFrame(columns=MARKET_COLUMNS).astype(MARKET_DTYPES),
    )


def merge_price_saving_if_df(price_df, if_df, previous_markets):  # noqa: ANN001, ANN201
    """price x IF (merge_df.merge_price_saving_if_df): outer join on (tier, type, armRegionName = IF Region),
    keep the rows with a spot price. A missing source carries the previous partition's values."""
    if price_df is None:
        price_df = previous_markets.drop(columns=["IF"]).rename(columns={"RegionCode": "armRegionName"})
    if if_df is None:
        if_df = previous_markets[["InstanceTier", "InstanceType", "RegionCode", "IF"]].rename(
            columns={"RegionCode": "Region"}
        )
    price_df = price_df[~sovereign(price_df["armRegionName"])]
    price_df = price_df[~price_df["SpotPrice"].isna()].copy()
    if_df = if_df[~sovereign(if_df["Region"])]
    if_df = if_df[~if_df["IF"].isna()].copy()
    for df, region in ((price_df, "armRegionName"), (if_df, "Region")):
        df["_tier"], df["_type"], df["_code"] = key(df["InstanceTier"]), key(df["InstanceType"]), key(df[region])
    price_df["_region"] = key(price_df["Region"])
    price_df = price_df.sort_values(["_tier", "_type", "_region", "SpotPrice", "OndemandPrice", "_code"], kind="stable")
    price_df = price_df.drop_duplicates(["_tier", "_type", "_region"])
    if_df = if_df.sort_values(["_tier", "_type", "_code", "IF"], kind="stable").drop_duplicates(
        ["_tier", "_type", "_code"]
    )
    join_df = pd.merge(
        price_df, if_df[["_tier", "_type", "_code", "IF"]], on=["_tier", "_type", "_code"], how="outer"
    )
    join_df = join_df[~join_df["SpotPrice"].isna()]
    join_df = join_df.rename(columns={"armRegionName": "RegionCode"})
    join_df = join_df.round(ROUNDING)
    return join_df.sort_values(["_tier", "_type", "_region"], kind="stable").reset_index(drop=True)


def load_sps(sps_df, desired_count):  # noqa: ANN001, ANN201
    """This run's SPS rows: sovereign regions dropped, fills, no-data rows dropped, one row per workload."""
    columns = ["InstanceTier", "InstanceType", "Region", "AvailabilityZone", "Score"]
    if sps_df is None:
        return pd.DataFrame(columns=columns + ["_tier", "_type", "_region", "_zone"])
    sps_df = sps_df[~sovereign(sps_df["RegionCodeSPS"])][columns].copy()
    sps_df["AvailabilityZone"] = sps_df["AvailabilityZone"].astype("str").fillna("N/A")
    sps_df["Score"] = sps_df["Score"].fillna(-1).astype("int64")
    sps_df = sps_df[~((sps_df["Score"] == -1) & (sps_df["AvailabilityZone"] == "N/A"))]
    sps_df["_tier"], sps_df["_type"] = key(sps_df["InstanceTier"]), key(sps_df["InstanceType"])
    sps_df["_region"], sps_df["_zone"] = key(sps_df["Region"]), key(sps_df["AvailabilityZone"])
    sps_df = sps_df.sort_values(["_tier", "_type", "_region", "_zone", "Score"], kind="stable")
    return sps_df.drop_duplicates(["_tier", "_type", "_region", "_zone"]).reset_index(drop=True)


def compare_max_instance(previous_df, new_df, target_capacity):  # noqa: ANN001, ANN201
    """T2/T3 of this run's answers (compare_data.compare_max_instance), looked up per workload."""
    fallback_val = FALLBACK.get(target_capacity, 0)
    keys = ["_tier", "_type", "_region", "_zone"]
    previous_df = previous_df.copy()
    previous_df["_tier"], previous_df["_type"] = key(previous_df["InstanceTier"]), key(previous_df["InstanceType"])
    previous_df["_region"], previous_df["_zone"] = key(previous_df["Region"]), key(previous_df["AvailabilityZone"])
    merged_df = pd.merge(new_df, previous_df[keys + ["T3", "T2"]], on=keys, how="left", suffixes=("", "_prev"))
    merged_df["Score"] = pd.to_numeric(merged_df["Score"], errors="coerce")
    merged_df["T3_prev"] = pd.to_numeric(merged_df["T3"], errors="coerce").fillna(0)
    merged_df["T2_prev"] = pd.to_numeric(merged_df["T2"], errors="coerce").fillna(0)
    merged_df["T3"] = np.where(
        merged_df["Score"] >= 3,
        np.maximum(target_capacity, merged_df["T3_prev"]),
        np.minimum(fallback_val, merged_df["T3_prev"]),
    )
    merged_df["T2"] = np.where(
        merged_df["Score"] >= 2,
        np.maximum(target_capacity, merged_df["T2_prev"]),
        np.minimum(fallback_val, merged_df["T2_prev"]),
    )
    for col in ["T2", "T3"]:
        merged_df[col] = merged_df[col].astype(int)
    merged_df = merged_df.drop(columns=["T3_prev", "T2_prev"])

    # the workloads carried to the next run: those not answered now keep theirs
    answered = previous_df.merge(merged_df[keys], on=keys, how="left", indicator=True)
    kept = previous_df[(answered["_merge"] == "left_only").to_numpy()]
    workloads = pd.concat([kept, merged_df], ignore_index=True)
    workloads = workloads.sort_values(keys, kind="stable")[WORKLOAD_COLUMNS].astype(WORKLOAD_DTYPES)
    return merged_df, workloads.reset_index(drop=True)


def known_series(previous_series, sps_df, desired_count):  # noqa: ANN001, ANN201
    """Every series this run publishes: the stored ones not answered now, and this run's answers."""
    sps_df = sps_df.assign(DesiredCount=desired_count)
    previous_series = previous_series.copy()
    previous_series["_tier"], previous_series["_type"] = (
        key(previous_series["InstanceTier"]),
        key(previous_series["InstanceType"]),
    )
    previous_series["_region"], previous_series["_zone"] = (
        key(previous_series["Region"]),
        key(previous_series["AvailabilityZone"]),
    )
    answered = previous_series.merge(sps_df[WORKLOAD_COLS], on=WORKLOAD_COLS, how="left", indicator=True)
    carried = previous_series[(answered["_merge"] == "left_only").to_numpy()]
    columns = ["_tier", "_type", "_region", "AvailabilityZone", "DesiredCount", "Score", "T2", "T3"]
    return pd.concat([carried[columns], sps_df[columns]], ignore_index=True)


def merge_if_saving_price_sps_df(price_saving_if_df, sps_df, time):  # noqa: ANN001, ANN201
    """(price x IF) x SPS (merge_data.merge_if_saving_price_sps_df): outer join, columns, fills, drops."""
    join_df = pd.merge(price_saving_if_df, sps_df, on=["_tier", "_type", "_region"], how="outer")
    join_df["Time"] = time
    join_df = join_df[ROW_COLUMNS + ["_tier", "_type", "_region"]]
    join_df = join_df.fillna(
        {
            "InstanceTier": "N/A",
            "InstanceType": "N/A",
            "Region": "N/A",
            "OndemandPrice": -1,
            "SpotPrice": -1,
            "Savings": -1,
            "IF": -1,
            "DesiredCount": -1,
            "Score": -1,
            "AvailabilityZone": "N/A",
            "T2": 0,
            "T3": 0,
        }
    )
    join_df = join_df[
        ~(
            (join_df["OndemandPrice"] == -1)
            & (join_df["SpotPrice"] == -1)
            & (join_df["Savings"] == -1)
            & (join_df["IF"] == -1)
        )
    ]
    join_df = join_df[~((join_df["Score"] == -1) & (join_df["AvailabilityZone"] == "N/A"))]
    join_df = join_df.round(ROUNDING).astype(ROW_DTYPES)
    join_df["_zone"] = key(join_df["AvailabilityZone"])
    return join_df.sort_values(WORKLOAD_COLS, kind="stable")[ROW_COLUMNS].reset_index(drop=True)


def with_workload_feature(df):  # noqa: ANN001, ANN201
    """The row-wise ':'-joined key and feature strings of compare_data.compare_sps."""
    df = df.round(ROUNDING).astype(object)
    df["_tier"], df["_type"], df["_region"], df["_zone"] = (
        key(df["InstanceTier"]),
        key(df["InstanceType"]),
        key(df["Region"]),
        key(df["AvailabilityZone"]),
    )
    if df.empty:  # agg on no rows gives a frame, not a column (the legacy skipped comparing then)
        return df.assign(Workload=pd.Series(dtype=object), Feature=pd.Series(dtype=object))
    df["Workload"] = joined(df[WORKLOAD_COLS].astype(str))
    df["Feature"] = joined(df[FEATURE_COLS].astype(str))
    return df


def joined(strings):  # noqa: ANN001, ANN201
    """The legacy's `strings.agg(':'.join, axis=1)`, the same strings built column by column (see the module
    docstring: row by row, pandas 3 needs ~150 us a row, minutes a partition)."""
    first, *rest = strings.columns
    return strings[first].str.cat([strings[col] for col in rest], sep=":")


def compare_sps(previous_df, current_df):  # noqa: ANN001, ANN201
    """The rows that are new series or changed a feature (compare_data.compare_sps), and their key strings."""
    previous_keyed = with_workload_feature(previous_df).drop_duplicates(subset=["Workload"])
    current_keyed = with_workload_feature(current_df)
    merged_df = current_keyed.merge(
        previous_keyed[["Workload", "Feature"]], on="Workload", how="left", suffixes=("_curr", "_prev")
    )
    changed = (merged_df["Feature_prev"].isna()) | (
        (merged_df["Feature_prev"].notna()) & (merged_df["Feature_curr"] != merged_df["Feature_prev"])
    )
    changed_df = current_df[changed.to_numpy()].reset_index(drop=True)
    new_series = int(merged_df["Feature_prev"].isna().sum())
    return changed_df, current_keyed["Workload"][changed.to_numpy()], previous_keyed["Workload"], new_series


def update_all_data(previous_df, previous_workloads, changed_df, changed_workloads):  # noqa: ANN001, ANN201
    """The stored series after this run: changed rows replace (or join) their series."""
    kept = previous_df[~previous_workloads.isin(set(changed_workloads)).to_numpy()]
    all_data = pd.concat([kept, changed_df], ignore_index=True)
    all_data["_tier"], all_data["_type"] = key(all_data["InstanceTier"]), key(all_data["InstanceType"])
    all_data["_region"], all_data["_zone"] = key(all_data["Region"]), key(all_data["AvailabilityZone"])
    all_data = all_data.sort_values(WORKLOAD_COLS, kind="stable")[ROW_COLUMNS]
    return all_data.astype(ROW_DTYPES).reset_index(drop=True)


def legacy_merge(
    price: pd.DataFrame | None,
    eviction: pd.DataFrame | None,
    sps: pd.DataFrame | None,
    desired_count: int,
    data_time: datetime,
    previous_state: MergeState | None,
) -> tuple[pd.DataFrame, pd.DataFrame, MergeState, int]:
    """(rows, changed, state, new series) of one partition, the legacy way (merge_data.main)."""
    previous = previous_state or empty_state()
    price_saving_if_df = merge_price_saving_if_df(price, eviction, previous.markets)
    sps_df = load_sps(sps, desired_count)
    sps_df, workloads = compare_max_instance(previous.workloads, sps_df, desired_count)
    sps_merged_df = merge_if_saving_price_sps_df(
        price_saving_if_df, known_series(previous.series, sps_df, desired_count), format_time(data_time)
    )
    changed_df, changed_workloads, previous_workloads, new_series = compare_sps(previous.series, sps_merged_df)
    markets = price_saving_if_df[MARKET_COLUMNS].astype(MARKET_DTYPES)
    state = MergeState(
        series=update_all_data(previous.series, previous_workloads, changed_df, changed_workloads),
        workloads=workloads,
        markets=markets,
    )
    return sps_merged_df, changed_df, state, new_series
