"""What a source's records must be before anything is computed from them (docs/contract.md "Bad input").

Azure's answers are data from outside: a record of the wrong type, a missing or empty key, a price that is not a
finite number in range, a score string nobody knows. Such a record is *rejected* (counted, with the reason) instead
of crashing the collection or reaching the archive; a source whose rejected share is above MAX_REJECTED_SHARE
counts as failed. Every number that passes is one DynamoDB can hold (finite, far below 9.9E125).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .history_keys import SEP

# The most a VM hour can cost, in USD. Azure's dearest sizes cost a few hundred dollars an hour; a price above this
# is a unit or parsing error of the answer, not a price.
MAX_PRICE_PER_HOUR = 10_000.0
# A source whose rejected records are more than this share of what it served counts as failed: a few odd records
# are quarantined, a broken answer is not half-used.
MAX_REJECTED_SHARE = 0.01


@dataclass
class Rejections:
    """Counts of rejected records by reason; `served` counts every record looked at."""

    served: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())

    @property
    def share(self) -> float:
        return self.rejected / self.served if self.served else 0.0

    def add(self, other: Rejections) -> None:
        self.served += other.served
        self.reasons.update(other.reasons)

    def too_many(self, limit: float = MAX_REJECTED_SHARE) -> bool:
        return self.share > limit

    def summary(self, top: int = 5) -> str:
        """e.g. '3 of 1000 rejected (retailPrice not a number: 2, armSkuName empty: 1)'."""
        detail = ", ".join(f"{reason}: {n}" for reason, n in self.reasons.most_common(top))
        return f"{self.rejected} of {self.served} rejected" + (f" ({detail})" if detail else "")


def key_text(value: Any) -> bool:
    """A usable key part: a non-empty string without the DynamoDB key separator."""
    return isinstance(value, str) and bool(value.strip()) and SEP not in value


def number(value: Any) -> bool:
    """A JSON number that is a real, finite number (bools are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def price(value: Any) -> bool:
    return number(value) and 0 <= value <= MAX_PRICE_PER_HOUR


# Price item fields that must be usable keys, and the optional text fields that must be text when present.
PRICE_KEYS = ("armRegionName", "armSkuName", "location", "meterName")
PRICE_TEXTS = ("meterId", "skuId", "productId", "productName", "skuName", "type", "effectiveStartDate",
               "effectiveEndDate")  # fmt: skip


def price_item_problem(item: Any) -> str | None:
    """Why a Retail Prices item cannot be used, or None."""
    if not isinstance(item, Mapping):
        return "not an object"
    for name in PRICE_KEYS:
        if not key_text(item.get(name)):
            return f"{name} empty or not text"
    for name in PRICE_TEXTS:
        if item.get(name) is not None and not isinstance(item[name], str):
            return f"{name} not text"
    if not price(item.get("retailPrice")):
        return "retailPrice not a price"
    if item.get("tierMinimumUnits") is not None and not number(item["tierMinimumUnits"]):
        return "tierMinimumUnits not a number"
    return None


def eviction_row_problem(row: Any) -> str | None:
    """Why a Resource Graph eviction-rate row cannot be used, or None (unknown bucket strings are counted apart)."""
    if not isinstance(row, Mapping):
        return "not an object"
    for name in ("location", "skuName"):
        if not key_text(row.get(name)):
            return f"{name} empty or not text"
    if not isinstance(row.get("evictionRate"), str):
        return "evictionRate not text"
    return None


def sps_entry_problem(entry: Any) -> str | None:
    """Why a placementScores entry cannot be used, or None (unknown score strings are counted apart)."""
    if not isinstance(entry, Mapping):
        return "not an object"
    for name in ("sku", "region"):
        if not key_text(entry.get(name)):
            return f"{name} empty or not text"
    if not isinstance(entry.get("score"), str):
        return "score not text"
    zone = entry.get("availabilityZone")
    if zone not in (None, "") and not key_text(zone if isinstance(zone, str) else None) and not number(zone):
        return "availabilityZone not a zone"
    return None


def split_valid(records: Iterable[Any], problem: Callable[[Any], str | None]) -> tuple[list[Any], Rejections]:
    """The records `problem` finds nothing wrong with, and the rejections of the others."""
    kept, rejections = [], Rejections()
    for record in records:
        rejections.served += 1
        reason = problem(record)
        if reason is None:
            kept.append(record)
        else:
            rejections.reasons[reason] += 1
    return kept, rejections
