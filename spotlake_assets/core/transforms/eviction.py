"""Spot eviction rates from Azure Resource Graph into the interruption-frequency (IF) table
(docs/contract.md "Interruption frequency"). Pure pandas."""

from __future__ import annotations

import pandas as pd

from .regions import join_key, sovereign_mask

# Higher is better: the rarest evictions score 3.
EVICTION_RATE_TO_IF = {"0-5": 3.0, "5-10": 2.5, "10-15": 2.0, "15-20": 1.5, "20+": 1.0}
# Azure spells the buckets '0-5' (legacy answers) or with percent signs ('0%-5%', '20+%', '0-5%'): both are read.
_NOT_IN_BUCKET_KEY = r"[%\s]"


def bucket_key(rates: pd.Series) -> pd.Series:
    """Eviction-rate strings in the spelling of EVICTION_RATE_TO_IF: percent signs and blanks removed."""
    return rates.astype("string").str.replace(_NOT_IN_BUCKET_KEY, "", regex=True)
IF_COLUMNS = ["InstanceTier", "InstanceType", "Region", "IF"]


def empty_if_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "InstanceTier": pd.Series(dtype="string"),
            "InstanceType": pd.Series(dtype="string"),
            "Region": pd.Series(dtype="string"),
            "IF": pd.Series(dtype="float64"),
        }
    )


def clean_eviction(rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The IF table and the number of rows dropped for an eviction-rate string we do not know
    ('0-5' and '0%-5%' are the same bucket).

    `skuName` ('standard_d2s_v3') splits at the first '_' into tier and type, keeping Azure's spelling:
    the legacy capitalised both halves, which breaks sizes like NC24ads_A100_v4; joins are made
    case-insensitive instead (merge). Sovereign regions are dropped. Should Azure list a (region, size)
    twice, the lower IF (the more pessimistic) is kept, so the choice does not depend on row order.
    """
    if rows.empty:
        return empty_if_table(), 0
    df = rows[["location", "skuName", "evictionRate"]].dropna()
    df = df[~sovereign_mask(df["location"])]
    df = df.assign(IF=bucket_key(df["evictionRate"]).map(EVICTION_RATE_TO_IF).astype("float64"))
    unknown = int(df["IF"].isna().sum())
    df = df[df["IF"].notna()]
    parts = df["skuName"].astype("string").str.strip().str.split("_", n=1, expand=True).reindex(columns=[0, 1])
    table = pd.DataFrame(
        {
            "InstanceTier": parts[0].where(parts[1].notna()),
            "InstanceType": parts[1].where(parts[1].notna(), parts[0]),
            "Region": df["location"].astype("string").str.strip(),
            "IF": df["IF"],
        }
    )
    keyed = table.assign(
        _t=join_key(table["InstanceTier"].fillna("")), _y=join_key(table["InstanceType"]),
        _r=join_key(table["Region"]),
    ).sort_values(["_t", "_y", "_r", "IF"], kind="mergesort")
    keyed = keyed.drop_duplicates(subset=["_t", "_y", "_r"], keep="first")
    return keyed[IF_COLUMNS].astype(empty_if_table().dtypes.to_dict()).reset_index(drop=True), unknown
