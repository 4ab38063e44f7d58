"""The web site's history query over the DynamoDB time series (docs/contract.md "The time series").

`query_history` returns the points of one instance type in [start, end] (one region or all, one zone or all,
one tier or all), plus, for every matching series with a value before start, that value as of start (the
series' last point before start, with its real `Time`): only changes are stored, so a series that did not
change in the range would otherwise be missing. It sends only `GetItem` (the regions index) and `Query` (see
keys.py for the key design), one region per thread.

Both point shapes are read, in any mix (points_of_item): an item per market and Time holding its series in a
`series` map (written since issue 11), and the single points written before. A one-zone query keeps the members
of that zone and filters single points server-side on `zk` (items without `zk` pass that filter).

Limits (checked before any request, except the point count): end not before start, at most one month (End's
date at most Start's date plus one calendar month, computed as the web site's date picker does), at most
`max_points` points in the range (points, not items: the members of the asked zone; the as-of-start values
come on top; counted before the tier filter, which is applied to the points read, since the tier is not a
filterable attribute). Over the cap, the remaining pages are read with only `sk` and `series` projected and
counted, so the error (TooManyPointsError) says exactly how many points matched.
An optional `timeout` (seconds) stops the query before its next request once it has run that long.

The command line is `spotlake history` (spotlake_assets/cli.py).
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time as clock
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from spotlake_assets.core import history_keys as keys
from spotlake_assets.core.columns import FLOAT_COLUMNS, INT_COLUMNS

# The record fields, in the order of docs/contract.md "Stored objects".
RECORD_FIELDS = [
    "id", "InstanceTier", "InstanceType", "Region", "AvailabilityZone",
    "OndemandPrice", "SpotPrice", "Savings", "IF", "Score", "DesiredCount", "T2", "T3", "Time",
]  # fmt: skip
TEXT_FIELDS = ["InstanceTier", "InstanceType", "Region", "AvailabilityZone", "Time"]
MAX_POINTS = 20_000
ALL = "*"
# botocore keeps 10 connections per client by default; more threads would only wait for one
QUERY_WORKERS = 10


class HistoryQueryError(RuntimeError):
    """A DynamoDB request of the history query failed."""


class HistoryQueryTimeout(HistoryQueryError):
    """The query ran longer than its `timeout` and stopped before its next request."""


class TooManyPointsError(ValueError):
    """More points match than the cap allows; `count` is how many matched."""

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
        value = value.astimezone(UTC).replace(tzinfo=None)
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
    max_points: int


def _validate(
    instance_type: Any,
    region: Any,
    availability_zone: Any,
    instance_tier: Any,
    start: Any,
    end: Any,
    max_points: Any,
) -> _Request:
    if instance_type is None or not str(instance_type).strip():
        raise ValueError("InstanceType is required")
    if str(instance_type).strip() == ALL:
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

    def one_or_all(value: Any, name: str) -> str | None:
        return None if value is None or str(value).strip() == ALL else keys.key_part(value, name=name)

    return _Request(
        type_key=keys.key_part(instance_type, name="InstanceType"),
        region_key=one_or_all(region, "Region"),
        zone_key=one_or_all(availability_zone, "AvailabilityZone"),
        tier_key=one_or_all(instance_tier, "InstanceTier"),
        first=keys.format_time(first),
        last=keys.format_time(last),
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

    def __init__(self, client: Any, table: str, request: _Request, deadline: float | None = None) -> None:
        self.client = client
        self.table = table
        self.request = request
        self.budget = _Budget(request.max_points)
        self.deadline = deadline  # time.monotonic() after which no request is sent

    def _check_deadline(self) -> None:
        if self.deadline is not None and clock.monotonic() >= self.deadline:
            raise HistoryQueryTimeout(f"the query of table {self.table!r} ran out of time")

    def _query(
        self,
        pk: str,
        condition: str,
        values: dict[str, str],
        *,
        newest_only: bool = False,
        count_only: Callable[[], bool] = lambda: False,
    ) -> Iterator[dict[str, Any]]:
        """Pages of `Query pk = :pk AND <condition>` in ascending `sk`, zone-filtered (single points of other
        zones; point items pass, their members are filtered by the reader); `newest_only`: the one item with the
        greatest `sk` (unfiltered: a filter applies after `Limit`). While `count_only()` is true, pages project
        only `sk` and `series`, enough to count points (the same pages: DynamoDB pages by the data it reads)."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": f"pk = :pk AND {condition}",
            "ExpressionAttributeValues": {name: {"S": v} for name, v in {":pk": pk, **values}.items()},
        }
        names: dict[str, str] = {}
        if newest_only:
            params.update(ScanIndexForward=False, Limit=1)
        elif self.request.zone_key is not None:
            params["FilterExpression"] = "attribute_not_exists(#zk) OR #zk = :zk"
            names["#zk"] = keys.ZONE_ATTRIBUTE
            params["ExpressionAttributeValues"][":zk"] = {"S": self.request.zone_key}
        while True:
            self._check_deadline()
            if count_only():  # DynamoDB refuses unused names, so #series is named only with its projection
                params["ProjectionExpression"] = "sk, #series"
                params["ExpressionAttributeNames"] = {**names, "#series": keys.SERIES_ATTRIBUTE}
            else:
                params.pop("ProjectionExpression", None)
                params.pop("ExpressionAttributeNames", None)
                if names:
                    params["ExpressionAttributeNames"] = names
            try:
                page = self.client.query(**params)
            except (ClientError, BotoCoreError) as exc:
                raise HistoryQueryError(f"Query of pk {pk!r} in table {self.table!r} failed: {exc}") from exc
            yield page
            if "LastEvaluatedKey" not in page or newest_only:
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def region_keys(self) -> list[str]:
        """The region key parts to read: the asked one, or all of the type's from its regions index item."""
        if self.request.region_key is not None:
            return [self.request.region_key]
        key = keys.regions_index_key(self.request.type_key)
        self._check_deadline()
        try:
            item = self.client.get_item(
                TableName=self.table, Key={name: {"S": value} for name, value in key.items()}
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise HistoryQueryError(f"GetItem of {key} in table {self.table!r} failed: {exc}") from exc
        return sorted(item[keys.REGIONS_ATTRIBUTE]["SS"]) if item else []

    def _in_zone(self, series: str) -> bool:
        return self.request.zone_key is None or keys.zone_of_series(series) == self.request.zone_key

    def points(self, pk: str) -> list[dict[str, Any]]:
        """Points of `pk` in [first, last]; once the shared budget is exceeded, the rest is only counted."""
        lo, hi = keys.points_between(self.request.first, self.request.last)
        # (Time, series id) -> point: a re-run converting an old partition briefly holds both shapes of a point
        found: dict[tuple[str, str], dict[str, Any]] = {}
        pages = self._query(
            pk, "sk BETWEEN :lo AND :hi", {":lo": lo, ":hi": hi}, count_only=lambda: self.budget.exceeded
        )
        for page in pages:
            items = page.get("Items", [])
            self.budget.add(sum(1 for item in items for sid in series_of_item(item) if self._in_zone(sid)))
            if self.budget.exceeded:  # pages read from now on are projected to sk and series: count them only
                found.clear()  # the query will fail: keep counting, stop holding points
            else:
                points = (point for item in items for point in points_of_item(item) if self._in_zone(point[0]))
                found.update(((p["Time"]["S"], sid), p) for sid, p in points)
        return list(found.values())

    def as_of_start(self, pk: str) -> list[dict[str, Any]]:
        """The last point before start of every series of `pk` (zone-filtered): the newest checkpoint before
        start overlaid with the points between it and start."""
        before = keys.shift(self.request.first, -keys.ONE_SECOND)
        latest: dict[str, dict[str, Any]] = {}
        first_change: str | None = None
        checkpoint = next(
            self._query(
                pk,
                "sk BETWEEN :lo AND :hi",
                {":lo": keys.CHECKPOINT_PREFIX, ":hi": keys.checkpoint_sort_key(before)},
                newest_only=True,
            )
        )["Items"]
        if checkpoint:
            latest = {sid: member["M"] for sid, member in checkpoint[0][keys.SERIES_ATTRIBUTE]["M"].items()}
            first_change = keys.shift(checkpoint[0]["AsOf"]["S"], keys.ONE_SECOND)
        if first_change is None:  # none before start: all of it (short, as checkpoints start with the data)
            changes = self._query(pk, "sk <= :hi", {":hi": keys.points_between(before, before)[1]})
        elif first_change <= before:
            lo, hi = keys.points_between(first_change, before)
            changes = self._query(pk, "sk BETWEEN :lo AND :hi", {":lo": lo, ":hi": hi})
        else:
            changes = iter(())
        for page in changes:  # ascending Time: a later point replaces an earlier one of the same series
            latest.update(point for item in page["Items"] for point in points_of_item(item))
        return [point for sid, point in latest.items() if self._in_zone(sid)]

    def region(self, region_key: str) -> list[dict[str, Any]]:
        pk = keys.SEP.join((self.request.type_key, region_key))
        found = self.points(pk)
        if self.budget.exceeded:
            return []
        items = self.as_of_start(pk) + found
        tier = self.request.tier_key
        return [i for i in items if tier is None or i["InstanceTier"]["S"].strip().casefold() == tier]


def series_of_item(item: dict[str, Any]) -> list[str]:
    """The series ids of the points a stored point item holds, either shape (needs only `sk` and `series`)."""
    if keys.SERIES_ATTRIBUTE not in item:
        return [keys.series_of_sort_key(item["sk"]["S"])]
    return list(item[keys.SERIES_ATTRIBUTE]["M"])


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


def query_history(
    client_or_resource: Any,
    *,
    instance_type: str,
    region: str = ALL,
    availability_zone: str = ALL,
    instance_tier: str = ALL,
    start: str | date | datetime,
    end: str | date | datetime,
    max_points: int | str = MAX_POINTS,
    table_name: str | None = None,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """Records (fields RECORD_FIELDS, `id` from 1) of the points in [start, end] and the as-of-start value of
    every matching series, ordered by Time, region, zone, desired count, tier. Raises ValueError for a bad
    request, TooManyPointsError (a ValueError) for more than `max_points` points, HistoryQueryError when
    DynamoDB fails and HistoryQueryTimeout once `timeout` seconds have passed."""
    request = _validate(instance_type, region, availability_zone, instance_tier, start, end, max_points)
    client, table = _target(client_or_resource, table_name)
    reader = _Reader(client, table, request, None if timeout is None else clock.monotonic() + timeout)
    regions = reader.region_keys()
    with ThreadPoolExecutor(max_workers=max(1, min(QUERY_WORKERS, len(regions)))) as pool:
        items = [item for found in pool.map(reader.region, regions) for item in found]
    if reader.budget.exceeded:
        raise TooManyPointsError(
            f"{reader.budget.total} points match InstanceType={instance_type!r} Region={region!r} "
            f"AvailabilityZone={availability_zone!r} from {request.first} to {request.last}, more than "
            f"{request.max_points}; narrow the time range or pick one region or zone",
            count=reader.budget.total,
            limit=request.max_points,
        )
    records = sorted(
        map(to_record, items),
        key=lambda r: (r["Time"], r["Region"].casefold(), r["AvailabilityZone"].casefold(), r["DesiredCount"],
                       r["InstanceTier"].casefold()),
    )  # fmt: skip
    return [{"id": i, **{f: r[f] for f in RECORD_FIELDS[1:]}} for i, r in enumerate(records, start=1)]


def render_json(records: list[dict[str, Any]]) -> str:
    """The HTTP endpoint's body: `{"Status": 200, "Data": [records]}`."""
    return json.dumps({"Status": 200, "Data": records})


def render_csv(records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RECORD_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()
