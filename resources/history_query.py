"""The web site's history query over the DynamoDB time series (docs/contract.md "The time series").

`query_history` returns the points of one instance type in [start, end] (one region or all, one zone or all,
one tier or all), plus, for every matching series with a value before start, that value as of start (the
series' last point before start, with its real `Time`): only changes are stored, so a series that did not
change in the range would otherwise be missing. It sends only `GetItem` (the regions index) and `Query` (see
keys.py for the key design), one region per thread.

Both point shapes are read, in any mix (points_of_item): an item per market and Time holding its series in a
`series` map (written since issue 11), and the single points written before. A one-zone query keeps the members
of that zone and filters single points server-side on `zk` (items without `zk` pass that filter).

Limits, so that the cost of a request is known before it is read (docs/web-site.md "The read budget"):
- before any request: each parameter's length (PARAMETER_LIMITS), dates between EARLIEST_DAY and LATEST_DAY, end
  not before start, at most one month (End's date at most Start's date plus one calendar month, computed as the
  web site's date picker does);
- a read budget in region-days: regions x (days of the range + 1 for the as-of-start read) at most
  `max_region_days` (MAX_REGION_DAYS). One region is known without reading; all regions (`*`) costs one small
  `GetItem` (the type's regions index), and a request over the budget is refused right after it
  (OverBudgetError);
- while reading: at most `max_points` points (points, not items: the members of the asked zone, counted before
  the tier filter, which is applied to the points read since the tier is not a filterable attribute): reading
  stops at the first page over the cap (TooManyPointsError says more than the cap matched, not how many: that
  would take a full read); and at most READ_UNITS_PER_REGION_DAY read units per region-day of the budget, as
  DynamoDB reports them (`ReturnConsumedCapacity`) or as the items' sizes say, whichever is more
  (ReadLimitError), a bound on data far denser than the history holds.
An optional `timeout` (seconds) stops the query before its next request once it has run that long. `ReadStats`
counts the requests and read units of one query.

Parameters as both callers spell them (`instance_type_name`, `check_zone`): Azure's `Standard_D2s_v3` is the stored
`D2s_v3`; a zone other than `*` and ZONES is refused, as it could only answer nothing. Why an empty answer is empty
is resources/history_hints.py's (`answer_history` keeps what it needs).

The command line is `spotlake history` (spotlake_assets/cli.py).
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time as clock
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from spotlake_assets.core import history_keys as keys
from spotlake_assets.core.columns import FLOAT_COLUMNS, INT_COLUMNS
from spotlake_assets.core.item_size import item_size, read_units

from .history_archive import ArchiveSource

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
# botocore keeps 10 connections per client by default; more threads would only wait for one
QUERY_WORKERS = 10


class HistoryQueryError(RuntimeError):
    """A DynamoDB request of the history query failed."""


class HistoryQueryTimeout(HistoryQueryError):
    """The query ran longer than its `timeout` and stopped before its next request."""


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
class _Request:
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


def _validate(
    instance_type: Any,
    region: Any,
    availability_zone: Any,
    instance_tier: Any,
    start: Any,
    end: Any,
    max_points: Any,
) -> _Request:
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

    return _Request(
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
    _validate(instance_type, region, availability_zone, instance_tier, start, end, max_points)


class _Budget:
    """Points read so far by all region threads, against the cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        with self._lock:
            self.total += count

    @property
    def exceeded(self) -> bool:
        return self.total > self.limit


class _Reader:
    """The Query calls of one request against one table."""

    def __init__(
        self,
        client: Any,
        table: str,
        request: _Request,
        deadline: float | None = None,
        stats: ReadStats | None = None,
        max_read_units: float | None = None,
        archive: ArchiveSource | None = None,
        hot_from: str | None = None,
    ) -> None:
        self.client = client
        self.archive = archive
        # Times before this are read from the archive, the rest from DynamoDB (None: DynamoDB only)
        self.hot_from = hot_from if archive is not None else None
        self.table = table
        self.request = request
        self.budget = _Budget(request.max_points)
        self.deadline = deadline  # time.monotonic() after which no request is sent
        self.stats = stats if stats is not None else ReadStats()
        self.max_read_units = max_read_units
        self.index_regions: list[str] | None = None  # the type's regions index, once read

    @property
    def stopped(self) -> bool:
        """Reading stops (every region thread, before its next request) once the point cap is exceeded."""
        return self.budget.exceeded

    def _check_deadline(self) -> None:
        if self.deadline is not None and clock.monotonic() >= self.deadline:
            raise HistoryQueryTimeout(f"the query of table {self.table!r} ran out of time")
        if self.max_read_units is not None and self.stats.read_units > self.max_read_units:
            raise ReadLimitError(
                f"the range holds more data than one request may read ({self.stats.read_units:g} read units, "
                f"at most {self.max_read_units:g}); narrow the time range or pick one region"
            )

    def _query(self, pk: str, condition: str, values: dict[str, str], *, newest_only: bool = False):
        """Pages of `Query pk = :pk AND <condition>` in ascending `sk`, zone-filtered (single points of other
        zones; point items pass, their members are filtered by the reader); `newest_only`: the one item with the
        greatest `sk` (unfiltered: a filter applies after `Limit`). Each page's read units are counted, and the
        budgets checked before the next page."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": f"pk = :pk AND {condition}",
            "ExpressionAttributeValues": {name: {"S": v} for name, v in {":pk": pk, **values}.items()},
            "ReturnConsumedCapacity": "TOTAL",
        }
        if newest_only:
            params.update(ScanIndexForward=False, Limit=1)
        elif self.request.zone_key is not None:
            params["FilterExpression"] = "attribute_not_exists(#zk) OR #zk = :zk"
            params["ExpressionAttributeNames"] = {"#zk": keys.ZONE_ATTRIBUTE}
            params["ExpressionAttributeValues"][":zk"] = {"S": self.request.zone_key}
        while True:
            self._check_deadline()
            try:
                page = self.client.query(**params)
            except (ClientError, BotoCoreError) as exc:
                raise HistoryQueryError(f"Query of pk {pk!r} in table {self.table!r} failed: {exc}") from exc
            self.stats.add(page, page.get("Items", []))
            yield page
            if "LastEvaluatedKey" not in page or newest_only:
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def region_keys(self) -> list[str]:
        """The region key parts to read: the asked one, or all of the type's from its regions index item."""
        if self.request.region_key is not None:
            return [self.request.region_key]
        return self.type_regions()

    def type_regions(self) -> list[str]:
        """The region key parts of the type's regions index item ([] when it has none), read once: a `GetItem`
        of one small item."""
        if self.index_regions is not None:
            return self.index_regions
        key = keys.regions_index_key(self.request.type_key)
        self._check_deadline()
        try:
            response = self.client.get_item(
                TableName=self.table,
                Key={name: {"S": value} for name, value in key.items()},
                ReturnConsumedCapacity="TOTAL",
            )
        except (ClientError, BotoCoreError) as exc:
            raise HistoryQueryError(f"GetItem of {key} in table {self.table!r} failed: {exc}") from exc
        item = response.get("Item")
        self.stats.add(response, [item] if item else [])
        self.index_regions = sorted(item[keys.REGIONS_ATTRIBUTE]["SS"]) if item else []
        return self.index_regions

    def _in_zone(self, series: str) -> bool:
        return self.request.zone_key is None or keys.zone_of_series(series) == self.request.zone_key

    def _archived(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """An archive read, counted like a Query page of the same items (read units from their sizes)."""
        self._check_deadline()
        self.stats.add({}, items)
        return items

    def _point_pages(self, pk: str, first: str | None, last: str) -> Iterator[list[dict[str, Any]]]:
        """Pages of the point items of `pk` with first <= Time <= last (`first` None: from the beginning),
        ascending: from the archive before hot_from, from DynamoDB from it on."""
        boundary = self.hot_from
        if boundary is not None and (first is None or first < boundary):
            archive_last = min(last, keys.shift(boundary, -keys.ONE_SECOND))
            lo, hi = (None, keys.points_between(archive_last, archive_last)[1]) if first is None else \
                keys.points_between(first, archive_last)  # fmt: skip
            yield self._archived(self.archive.points(pk, lo, hi))
        if boundary is not None and last < boundary:
            return
        start = boundary if boundary is not None and (first is None or first < boundary) else first
        if start is None:
            pages = self._query(pk, "sk <= :hi", {":hi": keys.points_between(last, last)[1]})
        else:
            lo, hi = keys.points_between(start, last)
            pages = self._query(pk, "sk BETWEEN :lo AND :hi", {":lo": lo, ":hi": hi})
        for page in pages:
            yield page.get("Items", [])

    def _newest_checkpoint(self, pk: str, before: str) -> dict[str, Any] | None:
        """The checkpoint of `pk` with the greatest AsOf <= before: DynamoDB's from hot_from on, else the archive's."""
        boundary = self.hot_from
        if boundary is None or before >= boundary:
            lo = keys.checkpoint_sort_key(boundary) if boundary is not None else keys.CHECKPOINT_PREFIX
            found = next(self._query(pk, "sk BETWEEN :lo AND :hi", {":lo": lo, ":hi": keys.checkpoint_sort_key(before)},
                                     newest_only=True))["Items"]  # fmt: skip
            if found or boundary is None:
                return found[0] if found else None
            before = keys.shift(boundary, -keys.ONE_SECOND)
        item = self.archive.newest_checkpoint(pk, before)
        self._archived([item] if item else [])
        return item

    def points(self, pk: str) -> list[dict[str, Any]]:
        """Points of `pk` in [first, last]; stops at the first page past the shared point cap."""
        # (Time, series id) -> point: a re-run converting an old partition briefly holds both shapes of a point
        found: dict[tuple[str, str], dict[str, Any]] = {}
        if self.stopped:
            return []
        for items in self._point_pages(pk, self.request.first, self.request.last):
            points = [(sid, p) for item in items for sid, p in points_of_item(item) if self._in_zone(sid)]
            self.budget.add(len(points))
            if self.stopped:  # the query fails: stop reading, in every region thread
                return []
            found.update(((p["Time"]["S"], sid), p) for sid, p in points)
        return list(found.values())

    def as_of_start(self, pk: str) -> list[dict[str, Any]]:
        """The last point before start of every series of `pk` (zone-filtered): the newest checkpoint before
        start overlaid with the points between it and start."""
        before = keys.shift(self.request.first, -keys.ONE_SECOND)
        latest: dict[str, dict[str, Any]] = {}
        first_change: str | None = None
        checkpoint = self._newest_checkpoint(pk, before)
        if checkpoint:
            latest = {sid: member["M"] for sid, member in checkpoint[keys.SERIES_ATTRIBUTE]["M"].items()}
            first_change = keys.shift(checkpoint["AsOf"]["S"], keys.ONE_SECOND)
        # none before start: all of it (short, as checkpoints start with the data)
        changes = self._point_pages(pk, first_change, before) if first_change is None or first_change <= before \
            else iter(())  # fmt: skip
        for items in changes:  # ascending Time: a later point replaces an earlier one of the same series
            latest.update(point for item in items for point in points_of_item(item))
        return [point for sid, point in latest.items() if self._in_zone(sid)]

    def region(self, region_key: str) -> list[dict[str, Any]]:
        pk = keys.SEP.join((self.request.type_key, region_key))
        found = self.points(pk)
        if self.stopped:
            return []
        items = self.as_of_start(pk) + found
        tier = self.request.tier_key
        return [i for i in items if tier is None or i["InstanceTier"]["S"].strip().casefold() == tier]


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


def _target(client_or_resource: Any, table_name: str | None) -> tuple[Any, str]:
    """(client, table) from a HistoryTable resource, or from a boto3 client plus `table_name`."""
    if hasattr(client_or_resource, "table_name") and hasattr(client_or_resource, "client"):
        return client_or_resource.client, table_name or client_or_resource.table_name
    if not table_name:
        raise ValueError("table_name is required when a boto3 client is given")
    return client_or_resource, table_name


def query_history(client_or_resource: Any, **request: Any) -> list[dict[str, Any]]:
    """Records (fields RECORD_FIELDS, `id` from 1) of the points in [start, end] and the as-of-start value of
    every matching series, ordered by Time, region, zone, desired count, tier. Raises ValueError for a bad
    request: OverBudgetError past `max_region_days` (None: no budget, for benchmarks and tests), TooManyPointsError
    for more than `max_points` points, ReadLimitError past the read units of the budget; HistoryQueryError when
    DynamoDB fails and HistoryQueryTimeout once `timeout` seconds have passed. `stats`, when given, counts the
    requests and read units. Its keywords are `answer_history`'s."""
    return answer_history(client_or_resource, **request).records


@dataclass(frozen=True)
class HistoryAnswer:
    """What `answer_history` found: the records, and what resources/history_hints.py needs to say why they may
    be none without reading again (the validated request; the reader, holding the regions index if it was read)."""

    records: list[dict[str, Any]]
    request: _Request
    reader: _Reader


def answer_history(
    client_or_resource: Any,
    *,
    instance_type: str,
    region: str = ALL,
    availability_zone: str = ALL,
    instance_tier: str = ALL,
    start: str | date | datetime,
    end: str | date | datetime,
    max_points: int | str = MAX_POINTS,
    max_region_days: int | None = MAX_REGION_DAYS,
    table_name: str | None = None,
    timeout: float | None = None,
    stats: ReadStats | None = None,
    archive: ArchiveSource | None = None,
    now: datetime | None = None,
) -> HistoryAnswer:
    """`query_history`, answered as a HistoryAnswer (same arguments, same errors). `archive`: where months past the
    retention are read (docs/design.md "Hot and cold"); `now` pins the time that decides it (default: the clock)."""
    request = _validate(instance_type, region, availability_zone, instance_tier, start, end, max_points)
    client, table = _target(client_or_resource, table_name)
    max_units = None if max_region_days is None else max_region_days * READ_UNITS_PER_REGION_DAY
    deadline = None if timeout is None else clock.monotonic() + timeout
    hot_from = archive.hot_from(now or datetime.now(UTC), request.first) if archive is not None else None
    reader = _Reader(client, table, request, deadline, stats, max_units, archive, hot_from)
    regions = reader.region_keys()
    region_days = len(regions) * (request.days + 1)  # + 1: the as-of-start read, at most a day of changes
    if max_region_days is not None and region_days > max_region_days:
        raise OverBudgetError(over_budget_message(len(regions), request.days, max_region_days),
                              region_days=region_days, limit=max_region_days)  # fmt: skip
    with ThreadPoolExecutor(max_workers=max(1, min(QUERY_WORKERS, len(regions)))) as pool:
        items = [item for found in pool.map(reader.region, regions) for item in found]
    if reader.budget.exceeded:
        raise TooManyPointsError(
            f"more than {request.max_points} points match InstanceType={instance_type!r} Region={region!r} "
            f"AvailabilityZone={availability_zone!r} from {request.first} to {request.last}; narrow the time "
            "range or pick one region or zone",
            count=reader.budget.total,
            limit=request.max_points,
        )
    records = sorted(
        map(to_record, items),
        key=lambda r: (r["Time"], r["Region"].casefold(), r["AvailabilityZone"].casefold(), r["DesiredCount"],
                       r["InstanceTier"].casefold()),
    )  # fmt: skip
    numbered = [{"id": i, **{f: r[f] for f in RECORD_FIELDS[1:]}} for i, r in enumerate(records, start=1)]
    return HistoryAnswer(numbered, request, reader)


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
