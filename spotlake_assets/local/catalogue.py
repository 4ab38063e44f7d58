"""Deterministic data of the local Azure emulator: regions, sizes, prices, eviction rates, placement scores.

Everything here is a pure function of a `DataKey` (seed, scale, 10-minute data epoch, drift rate, overrides),
so the same key always yields byte-identical answers and a test can predict what the emulator will serve.

Drift is O(1) per value: every series has its own period P (1/drift_rate on average) and phase, and its value
is f(seed, series, floor((epoch + phase) / P)); so between consecutive epochs a share drift_rate of the series
change. Two-valued series (eviction buckets, score thresholds) alternate between two neighbouring values, so
every period boundary is a real change and the observed change share matches drift_rate.
"""

from __future__ import annotations

import hashlib
import json
import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

from spotlake_assets.core import azure_regions

SCALES = ("small", "full")
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

# fmt: off
SMALL_REGIONS = (
    "eastus", "eastus2", "westus2", "northeurope", "westeurope", "japaneast", "koreacentral",
    "southeastasia", "germanywestcentral", "usgovvirginia", "chinanorth2",
)
SMALL_SIZES = (
    "Standard_D2s_v3", "Standard_D4s_v3", "Standard_D2as_v4", "Standard_D2s_v5", "Standard_D4s_v5",
    "Standard_D2ds_v5", "Standard_D2as_v5", "Standard_E2s_v3", "Standard_E4as_v5", "Standard_E8as_v5",
    "Standard_F2s_v2", "Standard_F4s_v2", "Standard_B1ms", "Standard_B2ms", "Standard_B2s",
    "Standard_NC24ads_A100_v4", "Standard_NC4as_T4_v3", "Standard_M8ms", "Standard_L8s_v3",
    "Standard_HB120rs_v3", "Standard_D13", "Standard_DS13", "Standard_D14", "Standard_DS14", "Basic_A1",
    "Basic_A2",
)
# fmt: on
# Offered in every region of both scales, so tests and the collector can rely on them.
CORE_SIZES = frozenset(
    {"Standard_D2s_v3", "Standard_NC24ads_A100_v4", "Standard_D14", "Standard_DS14", "Basic_A1"}
)
OFFER_PROBABILITY = {"small": 0.9, "full": 0.72}

# The Azure VM families and the legacy shared-meter sizes, from catalogue_families.json beside this module.
FAMILIES_FILE = "catalogue_families.json"


def _load_families() -> tuple[
    tuple[tuple[str, str, tuple[int, ...], float], ...], tuple[tuple[int, int], ...], float
]:
    """(product series, size-name template, size numbers, USD per unit and hour) of every family; the (size number,
    units) of the legacy D/DS sizes that share one meter, and that meter's rate. Unit = the number in the name."""
    data = json.loads(resources.files(__package__).joinpath(FAMILIES_FILE).read_text(encoding="utf-8"))
    families = tuple((f["series"], f["template"], tuple(f["numbers"]), f["rate"]) for f in data["families"])
    shared = data["shared_meter"]
    return families, tuple((n, units) for n, units in shared["sizes"]), shared["rate"]


_FAMILIES, _SHARED_METER_SIZES, _SHARED_METER_RATE = _load_families()


@dataclass(frozen=True)
class Region:
    code: str
    display_name: str
    sovereign: bool
    zones: tuple[str, ...]  # ('1', '2', '3') or () when the region answers without availabilityZone


@dataclass(frozen=True)
class Size:
    name: str  # armSkuName, Azure spelling: 'Standard_NC24ads_A100_v4', 'Basic_A1'
    meter: str  # meterName of the on-demand Linux row: 'NC24ads A100 v4', 'D14/DS14'
    series: str  # productName is 'Virtual Machines {series} Series'
    units: int
    rate: float  # Linux on-demand USD per unit and hour

    @property
    def label(self) -> str:
        """skuName of the on-demand row: the size without its tier ('D14', 'DS14', 'NC24ads A100 v4')."""
        return self.name.split("_", 1)[1].replace("_", " ")


@dataclass(frozen=True)
class Offer:
    region: Region
    size: Size
    planted: str | None  # one of PLANTED_CASES or None


# Special price situations planted on a share of public offers (disjoint), each at least once.
PLANTED_CASES = {
    "expired": 0.01,  # extra rows whose meterName ends in 'Expired'
    "superseded": 0.02,  # extra spot row: same key, older effectiveStartDate, another price
    "future": 0.01,  # extra spot row starting 3 days after the data epoch's day
    "ended": 0.01,  # extra spot row, newer start than the current one but effectiveEndDate in the past
    "od_zero": 0.005,  # Linux on-demand retailPrice 0
    "spot_only": 0.005,  # no on-demand rows at all
}


@dataclass(frozen=True)
class Catalogue:
    seed: int
    scale: str
    regions: tuple[Region, ...]
    sizes: tuple[Size, ...]
    offers: tuple[Offer, ...]

    @cached_property
    def regions_by_code(self) -> dict[str, Region]:
        return {r.code: r for r in self.regions}

    @cached_property
    def sizes_by_lower_name(self) -> dict[str, Size]:
        return {s.name.lower(): s for s in self.sizes}

    @cached_property
    def offered(self) -> frozenset[tuple[str, str]]:
        """(region code, lower-case size name) of every offer."""
        return frozenset((o.region.code, o.size.name.lower()) for o in self.offers)


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
        return cls(
            seed, scale, epoch, float(drift_rate), json.dumps(_normalise_overrides(overrides), sort_keys=True)
        )

    @cached_property
    def overrides(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.overrides_json)


# --------------------------------------------------------------------------------------------------
# hashing, time, drift


def hash64(*parts: object) -> int:
    """A stable 64-bit hash of the parts (Python's hash() is salted per process)."""
    data = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def unit(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) for the parts."""
    return hash64(*parts) / 2**64


def _guid(*parts: object) -> str:
    """A stable GUID-shaped id for the parts."""
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
# catalogue


def _region_table() -> tuple[tuple[str, str, bool], ...]:
    """(code, display name, sovereign) of the project's region list (spotlake_assets/core/azure_regions.csv)."""
    return tuple((r.code, r.display_name, r.sovereign) for r in azure_regions.region_table())


def public_region_codes() -> list[str]:
    """Public region codes in the order of azure_regions.csv (eastus, eastus2, westus, ...)."""
    return azure_regions.public_region_codes()


def sovereign_region_codes() -> list[str]:
    return azure_regions.sovereign_region_codes()


def _all_sizes() -> Iterator[Size]:
    for series, template, units, rate in _FAMILIES:
        tier = "Basic" if series.endswith("Basic") else "Standard"
        for n in units:
            short = template.format(n=n)
            yield Size(f"{tier}_{short}", short.replace("_", " "), series, max(n, 1), rate)
    for n, units in _SHARED_METER_SIZES:
        for series in ("D", "DS"):
            yield Size(f"Standard_{series}{n}", f"D{n}/DS{n}", series, units, _SHARED_METER_RATE)


@lru_cache(maxsize=4)
def load_catalogue(seed: int, scale: str) -> Catalogue:
    """Regions, sizes and which size is offered where, for a seed and scale (`small` or `full`)."""
    if scale not in SCALES:
        raise ValueError(f"scale {scale!r} is not one of {SCALES}")
    table = _region_table()
    if scale == "small":
        table = tuple(row for row in table if row[0] in SMALL_REGIONS)
    # Exactly half the regions (chosen by the seed) have availability zones.
    zoned = sorted(table, key=lambda row: unit(seed, "zones", row[0]))[: len(table) // 2]
    zoned_codes = {row[0] for row in zoned}
    regions = tuple(Region(c, d, s, ("1", "2", "3") if c in zoned_codes else ()) for c, d, s in table)

    sizes = tuple(_all_sizes())
    if scale == "small":
        sizes = tuple(s for s in sizes if s.name in SMALL_SIZES)
    pairs = [
        (r, s)
        for r in regions
        for s in sizes
        if s.name in CORE_SIZES or unit(seed, "offer", r.code, s.name) < OFFER_PROBABILITY[scale]
    ]
    planted = _plant(seed, [(r.code, s.name) for r, s in pairs if not r.sovereign])
    offers = tuple(Offer(r, s, planted.get((r.code, s.name))) for r, s in pairs)
    return Catalogue(seed, scale, regions, sizes, offers)


def _plant(seed: int, public_pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Disjoint planted cases: offers ranked by hash, the first ones to the first case and so on."""
    ranked = sorted(public_pairs, key=lambda p: hash64(seed, "plant", *p))
    out: dict[tuple[str, str], str] = {}
    for case, share in PLANTED_CASES.items():
        for pair in ranked[len(out) : len(out) + max(1, round(share * len(public_pairs)))]:
            out[pair] = case
    return out


def url_locations(count: int) -> list[str]:
    """The URL locations the SPS endpoint supports: the first `count` public regions."""
    return public_region_codes()[:count]


def subscription_ids(seed: int, count: int) -> list[str]:
    return [_guid(seed, "subscription", i) for i in range(count)]


def service_principal(seed: int) -> dict[str, str]:
    """tenant_id, client_id and client_secret of the emulator's service principal."""
    secret = hashlib.blake2b(f"{seed}\x1fsecret".encode(), digest_size=24).hexdigest()
    return {"tenant_id": _guid(seed, "tenant"), "client_id": _guid(seed, "client"), "client_secret": secret}


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
# prices

# fmt: off
_ITEM_KEYS = (
    "currencyCode", "tierMinimumUnits", "retailPrice", "unitPrice", "armRegionName", "location",
    "effectiveStartDate", "effectiveEndDate", "meterId", "meterName", "productId", "skuId", "productName",
    "skuName", "serviceName", "serviceId", "serviceFamily", "unitOfMeasure", "type", "isPrimaryMeterRegion",
    "armSkuName",
)
# fmt: on
_FUTURE = "<future>"  # effectiveStartDate placeholder, filled per epoch
_SERVICE_ID = "DZH313Z7MMC8"
_WINDOWS_LICENCE_PER_UNIT = 0.046


@dataclass(frozen=True)
class _PriceRow:
    values: tuple[Any, ...]  # item values in _ITEM_KEYS order; prices None; effectiveEndDate None when absent
    base: float  # Linux or Windows on-demand price of the offer
    multiplier: float  # fixed factor on the base (0 for planted zero prices, 0.2 for Low Priority, ...)
    drift_hash: int | None  # spot rows: the series whose discount drifts
    override_key: str  # 'region|standard_size'


@lru_cache(maxsize=4096)
def _product_id(seed: int, series: str, windows: bool) -> str:
    return f"{hash64(seed, 'product', series, windows):016X}"[:12]


@lru_cache(maxsize=65536)
def _sku_id(seed: int, product_id: str, size: str, kind: str, meter_suffix: str) -> str:
    return f"{product_id}/{hash64(seed, 'sku', size, kind, meter_suffix) % 0x10000:04X}"


def _month_date(seed: int, *parts: object, first_year: int = 2019, months: int = 66) -> datetime:
    m = int(unit(seed, "start", *parts) * months)
    return datetime(first_year + m // 12, 1 + m % 12, 1, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=4)
def _static_prices(seed: int, scale: str) -> tuple[_PriceRow, ...]:
    """The epoch-independent part of every price item, in the order the API serves them."""
    return tuple(row for offer in load_catalogue(seed, scale).offers for row in _offer_rows(seed, offer))


def _offer_rows(seed: int, offer: Offer) -> Iterator[_PriceRow]:
    """Price rows of one offer: on-demand, Spot, Low Priority for Linux and Windows, Windows Dev/Test (the
    `DevTestConsumption` type, billed at the Linux rate, which the consumption filter also returns), plus its
    planted case."""
    region, size, case = offer.region, offer.size, offer.planted
    override_key = f"{region.code}|{size.name}".lower()
    linux_od = size.units * size.rate * (0.95 + 0.4 * unit(seed, "region-factor", region.code))
    start = _month_date(seed, region.code, size.name)
    start_iso = _iso(start)
    primary = unit(seed, "primary", region.code, size.meter) < 0.97

    def row(
        windows: bool,
        kind: str,
        base: float,
        multiplier: float = 1.0,
        meter_suffix: str = "",
        start_at: str = start_iso,
        end_at: str | None = None,
        price_type: str = "Consumption",
    ) -> _PriceRow:
        suffix = {"od": "", "spot": " Spot", "low": " Low Priority"}[kind] + meter_suffix
        product_id = _product_id(seed, size.series, windows)
        values = (
            "USD",
            0.0,
            None,
            None,
            region.code,
            region.display_name,
            start_at,
            end_at,
            _guid(seed, "meter", region.code, size.meter + suffix, windows),
            size.meter + suffix,
            product_id,
            _sku_id(seed, product_id, size.name, kind, meter_suffix),
            f"Virtual Machines {size.series} Series" + (" Windows" if windows else ""),
            size.label + suffix,
            "Virtual Machines",
            _SERVICE_ID,
            "Compute",
            "1 Hour",
            price_type,
            primary,
            size.name,
        )
        drift = hash64(seed, "spot", region.code, size.meter, windows) if kind == "spot" else None
        return _PriceRow(values, base, multiplier, drift, override_key)

    for windows in (False, True):
        base = linux_od + (_WINDOWS_LICENCE_PER_UNIT * size.units if windows else 0.0)
        if case != "spot_only":
            yield row(windows, "od", base, 0.0 if case == "od_zero" and not windows else 1.0)
        yield row(windows, "spot", base)
        yield row(windows, "low", base, 0.2)
    for kind, multiplier in (("od", 1.0), ("spot", 1.0), ("low", 0.2)):
        yield row(True, kind, linux_od, multiplier, price_type="DevTestConsumption")
    if case == "expired":
        yield row(False, "od", linux_od, 1.1, " Expired")
        yield row(False, "spot", linux_od, 1.1, " Expired")
    elif case == "superseded":
        yield row(False, "spot", linux_od, 1.3, start_at=_iso(start.replace(year=start.year - 1)))
    elif case == "future":
        yield row(False, "spot", linux_od, 0.7, start_at=_FUTURE)
    elif case == "ended":
        ended = (start + timedelta(days=90), start + timedelta(days=180))
        yield row(False, "spot", linux_od, 0.5, start_at=_iso(ended[0]), end_at=_iso(ended[1]))


def spot_discount(seed: int, drift_hash: int, key: DataKey) -> float:
    """Spot price / on-demand price of a spot series in the key's epoch (0.1 .. 0.6)."""
    return 0.1 + 0.5 * unit(seed, drift_hash, period_index(key.epoch, key.drift_rate, drift_hash))


@lru_cache(maxsize=16)
def _epoch_prices(key: DataKey) -> array:
    factors = key.overrides.get("price", {})
    out = array("d")
    for row in _static_prices(key.seed, key.scale):
        price = row.base * row.multiplier * factors.get(row.override_key, 1.0)
        if row.drift_hash is not None:
            price *= spot_discount(key.seed, row.drift_hash, key)
        out.append(round(price, 6))
    return out


def price_count(seed: int, scale: str) -> int:
    """How many items the price API serves (the same in every epoch)."""
    return len(_static_prices(seed, scale))


def price_page(key: DataKey, start: int, stop: int) -> list[dict[str, Any]]:
    """Items [start, stop) of the key's price list, in the exact shape of the Retail Prices API."""
    rows = _static_prices(key.seed, key.scale)[start:stop]
    prices = _epoch_prices(key)
    future = _iso(epoch_start(key.epoch).replace(hour=0, minute=0) + timedelta(days=3))
    items = []
    for index, row in enumerate(rows, start):
        item = dict(zip(_ITEM_KEYS, row.values, strict=True))
        item["retailPrice"] = item["unitPrice"] = prices[index]
        if item["effectiveStartDate"] == _FUTURE:
            item["effectiveStartDate"] = future
        if item["effectiveEndDate"] is None:
            del item["effectiveEndDate"]
        items.append(item)
    return items


def price_items(key: DataKey) -> list[dict[str, Any]]:
    """The whole price list of the key's epoch."""
    return price_page(key, 0, price_count(key.seed, key.scale))


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


def quota_available(seed: int, region: str, size: str) -> bool:
    return unit(seed, "quota", region.lower(), size.lower()) < 0.92
