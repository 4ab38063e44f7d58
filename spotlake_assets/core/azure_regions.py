"""The Azure region list the project maintains (`azure_regions.csv` beside this module), from
`shared/data/azure-regions.csv`: region code, the price API's display name, and whether the region belongs to a
sovereign cloud. Pure: reads a file shipped with the package, nothing else.

The product uses it at run time to keep only public region codes among the SPS URL locations Azure lists
(`supported locations are '...'` can name internal ones such as `eastusstage` or `msft...`); the local emulator
builds its catalogue from it. It is not complete forever (Azure adds regions): a region missing here is only
left out of the URL-location rotation, and reported, never dropped from the data.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CSV_PATH = Path(__file__).with_name("azure_regions.csv")


@dataclass(frozen=True)
class AzureRegion:
    code: str  # armRegionName, the SPS and Resource Graph `location` ('eastus')
    display_name: str  # the Retail Prices API's `location` ('US East')
    sovereign: bool


@lru_cache(maxsize=1)
def region_table() -> tuple[AzureRegion, ...]:
    """Every region of the list, in the file's order."""
    rows = csv.DictReader(CSV_PATH.read_text(encoding="utf-8").splitlines())
    return tuple(AzureRegion(r["code"].strip(), r["display_name"].strip(), r["sovereign"] == "true") for r in rows)


def public_region_codes() -> list[str]:
    """Public region codes in the file's order (eastus, eastus2, westus, ...)."""
    return [r.code for r in region_table() if not r.sovereign]


def sovereign_region_codes() -> list[str]:
    return [r.code for r in region_table() if r.sovereign]


def split_public(codes: list[str] | tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(public region codes, everything else) of `codes`, each in the given order, compared case-insensitively;
    the public ones keep Azure's spelling."""
    public = {code.casefold() for code in public_region_codes()}
    kept = tuple(c for c in codes if c.strip().casefold() in public)
    other = tuple(c for c in codes if c.strip().casefold() not in public)
    return kept, other
