"""What the local Azure emulator offers: regions, sizes, families, and which size is offered where.

A pure function of (seed, scale): `load_catalogue` builds the regions (from spotlake_assets/core/azure_regions.csv,
half of them with zones), the sizes (from the VM families of catalogue_families.json beside this module), the
offers (which size each region has, some of them planted with a special price case), and the emulator's
subscriptions and service principal. It holds no time: how prices, eviction rates and scores move per 10-minute
data epoch is `drift`, and the price list in the Retail Prices API's shape is `price_list`. The stable hashes
both build on (`hash64`, `unit`, `guid`) live here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources

from spotlake_assets.core import azure_regions

SCALES = ("small", "full")

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
CORE_SIZES = frozenset({"Standard_D2s_v3", "Standard_NC24ads_A100_v4", "Standard_D14", "Standard_DS14", "Basic_A1"})
OFFER_PROBABILITY = {"small": 0.9, "full": 0.72}

# The Azure VM families and the legacy shared-meter sizes, from catalogue_families.json beside this module.
FAMILIES_FILE = "catalogue_families.json"


def _load_families() -> tuple[tuple[tuple[str, str, tuple[int, ...], float], ...], tuple[tuple[int, int], ...], float]:
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


# --------------------------------------------------------------------------------------------------
# hashing


def hash64(*parts: object) -> int:
    """A stable 64-bit hash of the parts (Python's hash() is salted per process)."""
    data = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def unit(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) for the parts."""
    return hash64(*parts) / 2**64


def guid(*parts: object) -> str:
    """A stable GUID-shaped id for the parts."""
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
    return [guid(seed, "subscription", i) for i in range(count)]


def service_principal(seed: int) -> dict[str, str]:
    """tenant_id, client_id and client_secret of the emulator's service principal."""
    secret = hashlib.blake2b(f"{seed}\x1fsecret".encode(), digest_size=24).hexdigest()
    return {"tenant_id": guid(seed, "tenant"), "client_id": guid(seed, "client"), "client_secret": secret}


def quota_available(seed: int, region: str, size: str) -> bool:
    return unit(seed, "quota", region.lower(), size.lower()) < 0.92
