"""The raw snapshots of one partition straight from the emulator's catalogue, without HTTP.

What the three raw assets would store for a partition when collected live from the local emulator at the
partition's data time: the cleaned price table, the IF table and the SPS rows at the partition's desired count
(every pair of the day's request pool, every zone of its region). The values are the catalogue's, so they are
exactly what the emulator serves; only the transport (paging, throttling, packing into requests, rotation) is
skipped. Benchmarks and tests of the merge use it to get full-scale inputs in seconds instead of minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from ..core.sps.answers import score_rows
from ..core.sps.pool import pool_pairs, region_names, size_info
from ..core.transforms.eviction import clean_eviction
from ..core.transforms.price import clean_prices, items_frame
from . import catalogue as cat
from . import drift, price_list


@dataclass(frozen=True)
class RawSnapshots:
    """One partition's raw frames, as the raw assets store them."""

    price: pd.DataFrame
    eviction: pd.DataFrame
    sps: pd.DataFrame


def price_table(seed: int, scale: str, t: datetime, drift_rate: float = drift.DEFAULT_DRIFT_RATE) -> pd.DataFrame:
    """The cleaned price table (azure_price_raw) of data time `t`."""
    key = drift.DataKey.make(seed, scale, drift.epoch_of(t), drift_rate)
    return clean_prices(items_frame(price_list.price_items(key)), t)


def eviction_table(seed: int, scale: str, t: datetime, drift_rate: float = drift.DEFAULT_DRIFT_RATE) -> pd.DataFrame:
    """The IF table (azure_eviction_raw) of data time `t`."""
    key = drift.DataKey.make(seed, scale, drift.epoch_of(t), drift_rate)
    table, _ = clean_eviction(pd.DataFrame(list(drift.eviction_rows(key))))
    return table


def sps_rows(
    seed: int, scale: str, t: datetime, desired_count: int, pool_price: pd.DataFrame,
    drift_rate: float = drift.DEFAULT_DRIFT_RATE,
) -> pd.DataFrame:  # fmt: skip
    """SPS rows (azure_sps_raw) of data time `t` at `desired_count` for every pair of the pool built from
    `pool_price` (the day's first price table), as the emulator answers them with availability zones."""
    key = drift.DataKey.make(seed, scale, drift.epoch_of(t), drift_rate)
    catalogue = cat.load_catalogue(seed, scale)
    pool = pool_pairs(pool_price)
    entries = []
    for code, size in zip(pool["RegionCodeSPS"], pool["InstanceTypeSPS"], strict=True):
        region = catalogue.regions_by_code.get(code)
        for zone in (region.zones if region is not None else ()) or (None,):
            entry = {"sku": size, "region": code, "score": drift.placement_score(key, desired_count, code, size, zone)}
            if zone:
                entry["availabilityZone"] = zone
            entries.append(entry)
    rows = score_rows(entries, desired_count, region_names(pool), size_info(pool)).rows
    return rows


def raw_snapshots(
    seed: int, scale: str, t: datetime, desired_count: int, pool_price: pd.DataFrame | None = None,
    drift_rate: float = drift.DEFAULT_DRIFT_RATE,
) -> RawSnapshots:  # fmt: skip
    """All three raw frames of data time `t`; the SPS pool comes from `pool_price`, else from this price table."""
    price = price_table(seed, scale, t, drift_rate)
    return RawSnapshots(
        price=price,
        eviction=eviction_table(seed, scale, t, drift_rate),
        sps=sps_rows(seed, scale, t, desired_count, price if pool_price is None else pool_price, drift_rate),
    )
