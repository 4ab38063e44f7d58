"""The price list the local Azure emulator serves, item by item in the exact shape of the Retail Prices API.

Each offer of the catalogue gives its rows (on-demand, Spot and Low Priority for Linux and Windows, Windows
Dev/Test, and its planted case); their epoch-independent part is built once per (seed, scale), and the prices of
a data epoch come from it and the spot discounts of `drift`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from .catalogue import Offer, guid, hash64, load_catalogue, unit
from .drift import DataKey, epoch_start, spot_discount

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
            guid(seed, "meter", region.code, size.meter + suffix, windows),
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
