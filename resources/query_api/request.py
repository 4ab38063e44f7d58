"""The query API's requests and answers, pure (docs/contract.md "The time series", docs/web-site.md "The read
budget"): what a request may ask, how it is validated before any read, what it may cost, and how stored points
become the web site's records. No I/O: resources/query_api/reader.py reads, resources/query_api/handler.py serves.

Limits, so that the cost of a request is known before it is read:
- before any request: each parameter's length (PARAMETER_LIMITS), dates between EARLIEST_DAY and LATEST_DAY, end
  not before start, at most one month (End's date at most Start's date plus one calendar month, computed as the
  web site's date picker does);
- a read budget in region-days: regions x (days of the range + 1 for the as-of-start read) at most
  `max_region_days` (MAX_REGION_DAYS); a request over it is refused (OverBudgetError);
- while reading: at most `max_points` points (TooManyPointsError says more than the cap matched, not how many),
  and at most READ_UNITS_PER_REGION_DAY read units per region-day of the budget (ReadLimitError), counted by
  `ReadStats` as DynamoDB reports them or as the items' sizes say, whichever is more.

Parameters as both callers spell them (`instance_type_name`, `check_zone`): Azure's `Standard_D2s_v3` is the stored
`D2s_v3`; a zone other than `*` and ZONES is refused, as it could only answer nothing.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from spotlake_assets.core import history_keys as keys
from spotlake_assets.core.columns import FLOAT_COLUMNS, INT_COLUMNS
from spotlake_assets.core.item_size import item_size, read_units

# The record fields, in the order of docs/contract.md "Stored objects".
RECORD_FIELDS = [
    "id", "InstanceTier", "InstanceType", "Region", "AvailabilityZone",
    "OndemandPrice", "SpotPrice", "Savings", "IF", "Score", "DesiredCount", "T2", "T3", "Time",
]  # fmt: skip
TEXT_FIELDS = ["InstanceTier", "InstanceType", "Region", "AvailabilityZone", "Time"]
MAX_POINTS = 20_000
ALL = "*"
# The read budget (docs/web-site.md "The read budget"): the site's form asks one region for up to a month
# (32 days + 1 = 33 region-days) or all regions; all 63 regions of a type for one day are 63 x 2 = 126.
MAX_REGION_DAYS = 128
# A region-day of the busiest market at the emulator's drift is ~173 KB (22 units); this is the bound past which
# reading stops (docs/history-cost.md), so a request reads at most 128 x 32 = 4,096 units plus a page per thread.
READ_UNITS_PER_REGION_DAY = 32
# Longest value of each parameter: Azure's longest size and region names are under 30 characters.
PARAMETER_LIMITS = {
    "InstanceType": 64, "Region": 64, "AvailabilityZone": 16, "InstanceTier": 32, "Start": 32, "End": 32,
}  # fmt: skip
# The zones a point can have (docs/contract.md, the SPS answer's zone or `Single`); any other value matches nothing,
# so it is refused rather than answered with nothing (issue 17). A zone Azure adds must be added here.
ZONES = ("1", "2", "3", "Single")
# Azure's own size names (armSkuName, SPS `Standard_D2s_v3`) start with the tier; the history stores the size
# without it (docs/contract.md, price step 7), so the prefix is dropped: `Standard_D2s_v3` asks for `D2s_v3`.
TIER_PREFIXES = ("standard_", "basic_")
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)


class ReadLimitError(ValueError):
    """The range held more data than the read budget allows; reading stopped."""


@dataclass
class ReadStats:
    """The requests of one query and their read units: as DynamoDB reported them (`ConsumedCapacity`), as the
    sizes of the items read say (`estimated_units`), and the larger of the two per request (`read_units`, what
    the budget counts: moto reports a flat half unit per request, DynamoDB less than the items' size when a
    filter dropped some)."""

    calls: int = 0
    read_units: float = 0.0
    reported_units: float = 0.0
    estimated_units: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, response: dict[str, Any], items: list[dict[str, Any]]) -> None:
        reported = float((response.get("ConsumedCapacity") or {}).get("CapacityUnits") or 0.0)
        estimated = read_units(sum(map(item_size, items)))
        with self._lock:
            self.calls += 1
            self.reported_units += reported
            self.estimated_units += estimated
            self.read_units += max(reported, estimated)


class OverBudgetError(ValueError):
    """The request would read more region-days than the budget; refused before its points are read."""

    def __init__(self, message: str, *, region_days: int, limit: int) -> None:
        super().__init__(message)
        self.region_days = region_days
        self.limit = limit


class TooManyPointsError(ValueError):
    """More points match than the cap allows; `count` is how many were read when reading stopped (> limit)."""

    def __init__(self, message: str, *, count: int, limit: int) -> None:
        super().__init__(message)
        self.count = count
        self.limit = limit


def one_month_after(day: date) -> date:
    """`day` plus one calendar month as JavaScript's `Date.setMonth(getMonth() + 1)` computes it, which is how the
    web site's date picker bounds End: the same day of the next month, a day past that month's end rolling over
    into the month after (2027-01-31 -> 2027-03-03). So it is never more than 31 days after `day`."""
    first_of_next = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
    return first_of_next + timedelta(days=day.day - 1)


def parse_bound(value: str | date | datetime, *, name: str, end: bool) -> datetime:
    """A range bound as a naive UTC datetime in whole seconds. A bare date is its whole day: 00:00:00 as
    start, 23:59:59 as end. Strings: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` or ISO 8601 (offsets converted)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(
                f"{name} {text!r} is not a date (YYYY-MM-DD) or time (YYYY-MM-DD HH:MM:SS)"
            ) from exc
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(23, 59, 59) if end else time())
    if value.tzinfo is not None:
        try:
            value = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError as exc:  # 9999-12-31T23:59:59-23:59 is past datetime's range in UTC
            raise ValueError(f"{name} {value.isoformat()!r} is out of range") from exc
    if not EARLIEST_DAY <= value.date() <= LATEST_DAY:
        raise ValueError(
            f"{name} {keys.format_time(value)} is out of range: dates are from {EARLIEST_DAY} to {LATEST_DAY}"
        )
    return value.replace(microsecond=0)


@dataclass(frozen=True)
class Request:
    """A validated query: key parts, inclusive `Time` bounds, cap."""

    type_key: str
    region_key: str | None  # None: all regions
    zone_key: str | None  # None: all zones
    tier_key: str | None  # None: all tiers
    first: str
    last: str
    days: int  # UTC days the range touches
    max_points: int


def check_length(value: Any, name: str) -> None:
    """Refuse a value longer than PARAMETER_LIMITS[name] (named, its length given, the value not echoed)."""
    text = "" if value is None else str(value)
    if len(text) > PARAMETER_LIMITS[name]:
        raise ValueError(f"{name} is {len(text)} characters long; at most {PARAMETER_LIMITS[name]} are accepted")


def instance_type_name(value: Any) -> str:
    """The size name the history stores for `value`: stripped, without Azure's tier prefix (`Standard_D2s_v3` and
    `standard_d2s_v3` -> `D2s_v3` / `d2s_v3`; keys are case-folded anyway). The one place both `spotlake history`
    and the query API spell a size; the tier is chosen by InstanceTier, not by the prefix."""
    text = "" if value is None else str(value).strip()
    for prefix in TIER_PREFIXES:
        if text.casefold().startswith(prefix) and len(text) > len(prefix):
            return text[len(prefix) :]
    return text


def check_zone(value: Any, name: str = "AvailabilityZone") -> None:
    """Refuse a zone other than `*` and ZONES (any case), naming `name` and the values accepted."""
    text = "" if value is None else str(value).strip()
    if text != ALL and text.casefold() not in {zone.casefold() for zone in ZONES}:
        allowed = ", ".join(repr(v) for v in (ALL, *ZONES))
        raise ValueError(f"{name} {text!r} is not a zone; use one of {allowed}")


def validate(
    instance_type: Any,
    region: Any,
    availability_zone: Any,
    instance_tier: Any,
    start: Any,
    end: Any,
    max_points: Any,
) -> Request:
    named = {"InstanceType": instance_type, "Region": region, "AvailabilityZone": availability_zone,
             "InstanceTier": instance_tier, "Start": start, "End": end}  # fmt: skip
    for name, value in named.items():
        if not isinstance(value, (date, datetime)):
            check_length(value, name)
    if instance_type is None or not str(instance_type).strip():
        raise ValueError("InstanceType is required")
    instance_type = instance_type_name(instance_type)
    if instance_type == ALL:
        raise ValueError("InstanceType must be one instance type ('*', every type at once, is not served)")
    if start is None or end is None:
        raise ValueError("Start and End are required")
    first, last = parse_bound(start, name="Start", end=False), parse_bound(end, name="End", end=True)
    if last < first:
        raise ValueError(f"End {keys.format_time(last)} is before Start {keys.format_time(first)}")
    latest_end = one_month_after(first.date())
    if last.date() > latest_end:
        raise ValueError(
            f"the range {keys.format_time(first)} .. {keys.format_time(last)} is longer than one month: "
            f"with Start {first.date()}, End may be at most {latest_end}"
        )
    try:
        cap = int(str(max_points).strip())  # the web site may send numbers as strings
    except ValueError as exc:
        raise ValueError(f"max_points {max_points!r} is not an integer") from exc
    if cap < 1:
        raise ValueError(f"max_points must be positive, got {cap}")
    if availability_zone is not None:
        check_zone(availability_zone)

    def one_or_all(value: Any, name: str) -> str | None:
        return None if value is None or str(value).strip() == ALL else keys.key_part(value, name=name)

    return Request(
        type_key=keys.key_part(instance_type, name="InstanceType"),
        region_key=one_or_all(region, "Region"),
        zone_key=one_or_all(availability_zone, "AvailabilityZone"),
        tier_key=one_or_all(instance_tier, "InstanceTier"),
        first=keys.format_time(first),
        last=keys.format_time(last),
        days=(last.date() - first.date()).days + 1,
        max_points=cap,
    )


def check_request(
    *,
    instance_type: Any,
    region: Any = ALL,
    availability_zone: Any = ALL,
    instance_tier: Any = ALL,
    start: Any,
    end: Any,
    max_points: Any = MAX_POINTS,
) -> None:
    """Raise the ValueError `query_history` would raise for this request, without a client."""
    validate(instance_type, region, availability_zone, instance_tier, start, end, max_points)


def points_of_item(item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(series id, point) of every point a stored point item holds, either shape; a point has the attributes of
    a single point item (typed values: every record field, to_record). An item with a `series` map holds a
    member per series, completed with the item's `InstanceType`, `Region` and its sort key as `Time` (a member's
    own value wins); an item without is one single point, its series id in its sort key."""
    if keys.SERIES_ATTRIBUTE not in item:
        return [(keys.series_of_sort_key(item["sk"]["S"]), item)]
    shared = {"InstanceType": item["InstanceType"], "Region": item["Region"], "Time": item["sk"]}
    return [(sid, {**shared, **member["M"]}) for sid, member in item[keys.SERIES_ATTRIBUTE]["M"].items()]


def to_record(item: dict[str, Any]) -> dict[str, Any]:
    """A point (typed attributes: a single point item, a checkpoint member, or points_of_item's) as a record of
    the web site's fields, without `id`."""
    record: dict[str, Any] = {field: item[field]["S"] for field in TEXT_FIELDS}
    record.update({field: float(item[field]["N"]) for field in FLOAT_COLUMNS})
    record.update({field: int(Decimal(item[field]["N"])) for field in INT_COLUMNS})
    return record


def over_budget_message(regions: int, days: int, limit: int) -> str:
    """How to narrow a request of `regions` regions over `days` days that is over the budget."""
    asked = f"{regions} regions x ({days} days + 1) = {regions * (days + 1)} region-days"
    longest = limit // regions - 1
    fits = f"at most {longest} day{'s' * (longest != 1)} for all {regions} regions" if longest >= 1 else ""
    return (
        f"the request reads {asked}, more than the {limit} one request may read; pick one region (a whole "
        f"month is {one_region_month()} region-days){' or ' + fits if fits else ''}"
    )


def one_region_month() -> int:
    """Region-days of the longest range the site's form allows for one region: 32 days (Jan 31 -> Mar 3) + 1."""
    return (one_month_after(date(2027, 1, 31)) - date(2027, 1, 31)).days + 2


def render_json(records: list[dict[str, Any]]) -> str:
    """The HTTP endpoint's body: `{"Status": 200, "Data": [records]}`."""
    return json.dumps({"Status": 200, "Data": records})


def render_csv(records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RECORD_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()
