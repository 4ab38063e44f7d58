"""The daily SPS request pool: every (region code, size) pair of the day's price data, minus what Azure taught us
is invalid, packed into few requests. Pure pandas."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .packing import Request, pack_requests

POOL_COLUMNS = ["request_id", "RegionCodeSPS", "Region", "InstanceTypeSPS", "InstanceTier", "InstanceType"]


def pool_pairs(
    price: pd.DataFrame, invalid_regions: Iterable[str] = (), invalid_sizes: Iterable[str] = ()
) -> pd.DataFrame:
    """One row per (region code, full size name) with its display name and tier/type, sorted."""
    tier = price["InstanceTier"].astype("string")
    full = (tier + "_" + price["InstanceType"].astype("string")).where(
        tier.notna(), price["InstanceType"].astype("string")
    )
    pairs = pd.DataFrame(
        {
            "RegionCodeSPS": price["armRegionName"].astype("string"),
            "Region": price["Region"].astype("string"),
            "InstanceTypeSPS": full,
            "InstanceTier": tier.fillna(""),
            "InstanceType": price["InstanceType"].astype("string"),
        }
    )
    bad_regions = {r.casefold() for r in invalid_regions}
    bad_sizes = {s.casefold() for s in invalid_sizes}
    keep = ~pairs["RegionCodeSPS"].str.casefold().isin(bad_regions) & ~pairs["InstanceTypeSPS"].str.casefold().isin(
        bad_sizes
    )
    pairs = pairs[keep].drop_duplicates(["RegionCodeSPS", "InstanceTypeSPS"])
    return pairs.sort_values(["RegionCodeSPS", "InstanceTypeSPS"], kind="mergesort").reset_index(drop=True)


def build_pool(
    price: pd.DataFrame, invalid_regions: Iterable[str] = (), invalid_sizes: Iterable[str] = ()
) -> pd.DataFrame:
    """The pool: the pairs, each with the id of the first packed request that asks for it."""
    pairs = pool_pairs(price, invalid_regions, invalid_sizes)
    requests = pack_requests(zip(pairs["RegionCodeSPS"], pairs["InstanceTypeSPS"], strict=True))
    owner: dict[tuple[str, str], int] = {}
    for i, request in enumerate(requests):
        for region in request.regions:
            for size in request.sizes:
                owner.setdefault((region, size), i)
    ids = [owner[(r, s)] for r, s in zip(pairs["RegionCodeSPS"], pairs["InstanceTypeSPS"], strict=True)]
    return pairs.assign(request_id=pd.Series(ids, dtype="int64"))[POOL_COLUMNS]


def requests_of(pool: pd.DataFrame) -> list[Request]:
    """The requests of a pool, each narrowed to the regions and sizes of the pairs it owns."""
    out = []
    for _, group in pool.groupby("request_id", sort=True):
        out.append(Request(tuple(sorted(set(group["RegionCodeSPS"]))), tuple(sorted(set(group["InstanceTypeSPS"])))))
    return out


def region_names(pool: pd.DataFrame) -> dict[str, str]:
    return dict(zip(pool["RegionCodeSPS"], pool["Region"], strict=True))


def size_info(pool: pd.DataFrame) -> dict[str, tuple[str, str]]:
    return {
        s: (t, y) for s, t, y in zip(pool["InstanceTypeSPS"], pool["InstanceTier"], pool["InstanceType"], strict=True)
    }


def _pair_keys(frame: pd.DataFrame) -> pd.MultiIndex:
    """(region, size) of each row, case-folded: Azure may echo a name in another case than it was asked."""
    return pd.MultiIndex.from_arrays(
        [
            frame["RegionCodeSPS"].astype("string").str.casefold(),
            frame["InstanceTypeSPS"].astype("string").str.casefold(),
        ]
    )


def in_pool(rows: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame:
    """The score rows of pool pairs only: a call answers the whole cross product of its regions and sizes."""
    return rows[_pair_keys(rows).isin(_pair_keys(pool))].reset_index(drop=True)


def coverage(rows: pd.DataFrame, pool: pd.DataFrame) -> float:
    """Share of the pool's pairs that got at least one score row (1.0 for an empty pool)."""
    if pool.empty:
        return 1.0
    wanted = set(_pair_keys(pool))
    return len(wanted & set(_pair_keys(rows))) / len(wanted)
