"""Cleaning of Azure Retail Prices items into the spot price table (docs/contract.md "Prices").

Pure pandas: items in, table out, no I/O, so every rule is tested with small hand-made frames.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from .regions import join_key, sovereign_mask

# The item fields the collector keeps; everything else in an item is dropped on arrival to save memory.
ITEM_FIELDS = (
    "meterId",
    "skuId",
    "productId",
    "productName",
    "meterName",
    "skuName",
    "location",
    "armRegionName",
    "armSkuName",
    "retailPrice",
    "tierMinimumUnits",
    "type",
    "effectiveStartDate",
    "effectiveEndDate",
)

# Paging by $skip can repeat a boundary item on two pages; meterId alone is shared by several sizes.
DEDUP_KEY = [
    "meterId",
    "skuId",
    "productId",
    "armRegionName",
    "armSkuName",
    "type",
    "effectiveStartDate",
    "tierMinimumUnits",
]
JOIN_KEY = ["location", "armRegionName", "armSkuName", "meterName"]

PRICE_COLUMNS = ["InstanceTier", "InstanceType", "Region", "armRegionName", "OndemandPrice", "SpotPrice", "Savings"]
TIERS = ("standard", "basic")


def items_frame(items: list[dict]) -> pd.DataFrame:
    """A frame of the kept fields of raw API items (missing fields become missing values)."""
    return pd.DataFrame.from_records(items, columns=list(ITEM_FIELDS))


def empty_price_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            **{c: pd.Series(dtype="string") for c in ("InstanceTier", "InstanceType", "Region", "armRegionName")},
            **{c: pd.Series(dtype="float64") for c in ("OndemandPrice", "SpotPrice", "Savings")},
        }
    )


def drop_unwanted_items(items: pd.DataFrame) -> pd.DataFrame:
    """The row-by-row rules: Consumption items only; no Windows, Low Priority or Expired meters; no sovereign
    clouds. Row-local, so the collector applies them to each page as it arrives to keep memory small."""
    df = items[items["type"].fillna("Consumption") == "Consumption"]
    df = df[~df["productName"].fillna("").str.contains("Windows", regex=False)]
    meter = df["meterName"].fillna("")
    df = df[~(meter.str.contains("Priority", regex=False) | meter.str.contains("Expired", regex=False))]
    return df[~sovereign_mask(df["armRegionName"].fillna(""))]


def clean_prices(items: pd.DataFrame, at: datetime) -> pd.DataFrame:
    """The spot price table of the moment `at` (the partition's data time).

    Rules in order: dedupe paging repeats; keep Consumption items effective at `at`; drop Windows,
    Low Priority and Expired meters; drop sovereign clouds by region code; split spot/on-demand and join
    them on (location, region, size, meter) case-insensitively, keeping rows with a spot price; on-demand 0
    is missing; Savings; tier/type from armSkuName; one row per (tier, type, region), chosen deterministically.
    """
    if items.empty:
        return empty_price_table()
    df = drop_unwanted_items(items.drop_duplicates(subset=DEDUP_KEY))
    df = _effective_at(df, at)

    is_spot = df["meterName"].str.contains("Spot", regex=False)
    spot = df[is_spot].assign(meterName=lambda d: d["meterName"].str.replace(r"\s*Spot$", "", regex=True))
    ondemand = df[~is_spot]
    spot = _one_per_join_key(spot)
    ondemand = _one_per_join_key(ondemand)

    keyed_spot = spot.assign(**{f"_k{i}": join_key(spot[c]) for i, c in enumerate(JOIN_KEY)})
    keyed_od = ondemand.assign(**{f"_k{i}": join_key(ondemand[c]) for i, c in enumerate(JOIN_KEY)})
    keys = [f"_k{i}" for i in range(len(JOIN_KEY))]
    # "Keep rows that have a spot price": the outer join's on-demand-only rows are dropped at once,
    # which is what a left join from the spot side gives.
    merged = keyed_spot.merge(
        keyed_od[keys + ["retailPrice"]].rename(columns={"retailPrice": "OndemandPrice"}), on=keys, how="left"
    ).rename(columns={"retailPrice": "SpotPrice"})
    merged = merged[merged["SpotPrice"].notna()]
    merged["OndemandPrice"] = merged["OndemandPrice"].astype("float64").where(merged["OndemandPrice"] != 0)
    merged["SpotPrice"] = merged["SpotPrice"].astype("float64")
    merged["Savings"] = (merged["OndemandPrice"] - merged["SpotPrice"]) / merged["OndemandPrice"] * 100

    tier_type = merged["armSkuName"].astype("string").str.split("_", n=1, expand=True).reindex(columns=[0, 1])
    has_tier = tier_type[0].str.casefold().isin(TIERS)
    merged["InstanceTier"] = tier_type[0].where(has_tier)
    merged["InstanceType"] = tier_type[1].where(has_tier, merged["armSkuName"])
    merged["Region"] = merged["location"]
    table = _one_per_series(merged)
    return table[PRICE_COLUMNS].astype(empty_price_table().dtypes.to_dict()).reset_index(drop=True)


def _effective_at(df: pd.DataFrame, at: datetime) -> pd.DataFrame:
    """Items in force at `at`: started on or before it and not yet ended."""
    start = pd.to_datetime(df["effectiveStartDate"], utc=True, errors="coerce", format="ISO8601")
    end = pd.to_datetime(df["effectiveEndDate"], utc=True, errors="coerce", format="ISO8601")
    at_ts = pd.Timestamp(at)
    keep = (start.isna() | (start <= at_ts)) & (end.isna() | (end > at_ts))
    return df[keep].assign(_start=start[keep])


def _one_per_join_key(df: pd.DataFrame) -> pd.DataFrame:
    """One price per (location, region, size, meter): the latest effective start; ties by price then ids."""
    keyed = df.assign(**{f"_n{i}": join_key(df[c]) for i, c in enumerate(JOIN_KEY)})
    norm = [f"_n{i}" for i in range(len(JOIN_KEY))]
    keyed = keyed.sort_values(
        norm + ["_start", "retailPrice", "meterId", "skuId"],
        ascending=[True] * len(norm) + [False, True, True, True],
        na_position="last",
        kind="mergesort",
    )
    return keyed.drop_duplicates(subset=norm, keep="first").drop(columns=norm)


def _one_per_series(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (tier, type, region), chosen by content, never by page arrival order.

    Prefer a row with an on-demand price (it gives Savings), then the lowest spot price (what a spot
    user pays), then the meter name, so identical inputs always give the identical table.
    """
    keyed = df.assign(
        _t=join_key(df["InstanceTier"].fillna("")),
        _y=join_key(df["InstanceType"]),
        _r=join_key(df["Region"]),
        _no_od=df["OndemandPrice"].isna(),
    )
    keyed = keyed.sort_values(
        ["_t", "_y", "_r", "_no_od", "SpotPrice", "meterName", "armSkuName"], kind="mergesort", na_position="last"
    )
    return keyed.drop_duplicates(subset=["_t", "_y", "_r"], keep="first")
