"""How the local Azure emulator's values move over time: spot discounts, eviction rates, placement scores.

Everything here is a pure function of a `DataKey` (seed, scale, 10-minute data epoch, drift rate, overrides) and
of the catalogue of that seed and scale, so the same key always yields byte-identical answers and a test can
predict what the emulator will serve.

Drift is O(1) per value: every series has its own period P (1/drift_rate on average) and phase, and its value
is f(seed, series, floor((epoch + phase) / P)); so between consecutive epochs a share drift_rate of the series
change. Two-valued series (eviction buckets, score thresholds) alternate between two neighbouring values, so
every period boundary is a real change and the observed change share matches drift_rate.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any

from .catalogue import SCALES, hash64, load_catalogue, unit

EPOCH_SECONDS = 600
DEFAULT_DRIFT_RATE = 0.03
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Desired counts SpotLake asks (partitions.DESIRED_COUNT_CYCLE); each threshold of a workload sits between
# two of them, so one threshold move changes the score of exactly one (desired count, workload) series.
# Kept literal here so that the emulator does not import Dagster.
SCORE_COUNT_STEPS = (1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
EVICTION_BUCKETS = ("0-5", "5-10", "10-15", "15-20", "20+")
_EVICTION_CUMULATIVE = (0.45, 0.65, 0.8, 0.9)  # most sizes are rarely evicted
# Only the non-scores Azure documents: an undocumented value is a fault (a failing check), which tests ask for
# with the `score` override.
SPECIAL_SCORES = (
    ("RestrictedSkuNotAvailable", 0.02),
    ("DataNotFoundOrStale", 0.012),
)


@dataclass(frozen=True)
class DataKey:
    """Everything the generated data depends on; hashable so that generated data can be cached per key."""

    seed: int
    scale: str
    epoch: int
    drift_rate: float = DEFAULT_DRIFT_RATE
    overrides_json: str = "{}"

    @classmethod
    def make(
        cls,
        seed: int,
        scale: str,
        epoch: int,
        drift_rate: float = DEFAULT_DRIFT_RATE,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> DataKey:
        if scale not in SCALES:
            raise ValueError(f"scale {scale!r} is not one of {SCALES}")
        return cls(seed, scale, epoch, float(drift_rate), json.dumps(_normalise_overrides(overrides), sort_keys=True))

    @cached_property
    def overrides(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.overrides_json)


# --------------------------------------------------------------------------------------------------
# time


def epoch_of(t: datetime) -> int:
    """The data epoch of a moment: the number of whole 10-minute steps since 1970 (UTC)."""
    return int((t - UNIX_EPOCH).total_seconds() // EPOCH_SECONDS)


def epoch_start(epoch: int) -> datetime:
    return UNIX_EPOCH + timedelta(seconds=epoch * EPOCH_SECONDS)


def period_index(epoch: int, drift_rate: float, series_hash: int) -> int:
    """Which value period a series is in at `epoch`: its value changes exactly when this index changes.

    The series' period is floor(1/rate) or that plus one, mixed so that the mean change probability per epoch
    is exactly drift_rate; its phase spreads the changes evenly over epochs.
    """
    if drift_rate <= 0:
        return 0
    if drift_rate >= 1:
        return epoch
    short = math.floor(1 / drift_rate)
    share_short = (drift_rate - 1 / (short + 1)) / (1 / short - 1 / (short + 1))
    period = short if (series_hash & 0xFFFFFFFF) / 2**32 < share_short else short + 1
    return (epoch + (series_hash >> 32) % period) // period


# --------------------------------------------------------------------------------------------------
# overrides


def _normalise_overrides(overrides: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Lower-cased keys; unknown sections and malformed values are refused by name."""
    out: dict[str, dict[str, Any]] = {}
    for section, entries in (overrides or {}).items():
        if section not in ("price", "eviction", "score"):
            raise ValueError(f"overrides section {section!r} is not one of 'price', 'eviction', 'score'")
        if not isinstance(entries, Mapping):
            raise ValueError(f"overrides[{section!r}] must be a mapping of 'region|size...' to a value")
        norm: dict[str, Any] = {}
        for key, value in entries.items():
            if section == "price" and not isinstance(value, int | float):
                raise ValueError(f"overrides['price'][{key!r}] must be a number (a price factor)")
            if section == "eviction" and value not in EVICTION_BUCKETS:
                raise ValueError(f"overrides['eviction'][{key!r}] must be one of {EVICTION_BUCKETS}")
            if section == "score" and not isinstance(value, str):
                raise ValueError(f"overrides['score'][{key!r}] must be a score string")
            norm[str(key).lower()] = value
        out[section] = norm
    return out


# --------------------------------------------------------------------------------------------------
# spot prices


def spot_discount(seed: int, drift_hash: int, key: DataKey) -> float:
    """Spot price / on-demand price of a spot series in the key's epoch (0.1 .. 0.6)."""
    return 0.1 + 0.5 * unit(seed, drift_hash, period_index(key.epoch, key.drift_rate, drift_hash))


# --------------------------------------------------------------------------------------------------
# eviction rates (Resource Graph)


@lru_cache(maxsize=4)
def _static_eviction(seed: int, scale: str) -> tuple[tuple[str, str, int, int], ...]:
    """(location, skuName, base bucket, drift hash) for about 80% of the public offers."""
    rows = []
    for offer in load_catalogue(seed, scale).offers:
        code, sku = offer.region.code, offer.size.name.lower()
        if offer.region.sovereign or unit(seed, "eviction", code, sku) >= 0.8:
            continue
        base = bisect_right(_EVICTION_CUMULATIVE, unit(seed, "eviction-base", code, sku))
        rows.append((code, sku, base, hash64(seed, "eviction-drift", code, sku)))
    return tuple(rows)


def eviction_resource_id(location: str, sku: str) -> str:
    """The `id` of a SpotResources eviction-rate row, in the shape Azure gives such resources."""
    return f"/providers/Microsoft.Compute/skuSpotEvictionRate/{sku}/location/{location}"


def percent_bucket(bucket: str) -> str:
    """A bucket in the '%'-suffixed spelling ('0-5' -> '0%-5%', '20+' -> '20+%')."""
    return "20+%" if bucket == "20+" else "-".join(f"{part}%" for part in bucket.split("-"))


@lru_cache(maxsize=16)
def eviction_rows(key: DataKey) -> tuple[dict[str, str], ...]:
    """Rows of the skuspotevictionrate query in the key's epoch (cached and shared: do not mutate)."""
    fixed = key.overrides.get("eviction", {})
    out = []
    for code, sku, base, drift in _static_eviction(key.seed, key.scale):
        # Alternate with the neighbouring bucket, so every period boundary is a change.
        other = base + 1 if base < len(EVICTION_BUCKETS) - 1 else base - 1
        bucket = EVICTION_BUCKETS[other if period_index(key.epoch, key.drift_rate, drift) % 2 else base]
        out.append({"location": code, "skuName": sku, "evictionRate": fixed.get(f"{code}|{sku}", bucket)})
    return tuple(out)


# --------------------------------------------------------------------------------------------------
# spot placement scores


def count_step(desired_count: int) -> int:
    """Index of the desired count among SCORE_COUNT_STEPS (counts in between round up)."""
    return bisect_left(SCORE_COUNT_STEPS, desired_count)


def placement_score(key: DataKey, desired_count: int, region: str, size: str, zone: str | None) -> str:
    """The score of a (desired count, region, size, zone); non-increasing in the desired count.

    Per workload (region, size, zone) two thresholds m <= n: steps below m score High, below n Medium, the
    rest Low. Each threshold alternates between two neighbouring steps (m0/m0+1, n0/n0+1 with m0+1 <= n0), so
    one move changes exactly one (desired count, workload) series. A few workloads have a constant
    non-numeric score. `zone` is '1'/'2'/'3', or None for a region without zones. Sizes not offered in the
    region are RestrictedSkuNotAvailable.
    """
    region, sku = region.lower(), size.lower()
    fixed = key.overrides.get("score", {})
    zone_key = zone or "single"
    for candidate in (
        f"{region}|{sku}|{zone_key}|{desired_count}",
        f"{region}|{sku}|{zone_key}",
        f"{region}|{sku}",
    ):
        if candidate in fixed:
            return fixed[candidate]
    if (region, sku) not in load_catalogue(key.seed, key.scale).offered:
        return "RestrictedSkuNotAvailable"
    u = unit(key.seed, "score", region, sku, zone_key)
    for special, share in SPECIAL_SCORES:
        if u < share:
            return special
        u -= share
    n0 = 1 + int(unit(key.seed, "score-n", region, sku, zone_key) * 10)  # 1..10
    m0 = int(unit(key.seed, "score-m", region, sku, zone_key) ** 0.5 * n0)  # 0..n0-1, skewed to High
    # Each change of m or n changes one of the 11 count series: both move at 11/2 x drift_rate.
    rate = min(1.0, key.drift_rate * len(SCORE_COUNT_STEPS) / 2)
    m = m0 + period_index(key.epoch, rate, hash64(key.seed, "m", region, sku, zone_key)) % 2
    n = n0 + period_index(key.epoch, rate, hash64(key.seed, "n", region, sku, zone_key)) % 2
    step = count_step(desired_count)
    return "High" if step < m else "Medium" if step < n else "Low"
