"""The query API's one DynamoDB reader (docs/contract.md "The time series"): the points of one instance type in
[start, end] (one region or all, one zone or all, one tier or all), plus, for every matching series with a value
before start, that value as of start (the series' last point before start, with its real `Time`): only changes are
stored, so a series that did not change in the range would otherwise be missing. It sends only `GetItem` (the
regions index) and `Query` (core/history_keys.py has the key design), one region per thread; times past the
retention are read from the archive (resources/query_api/archive.py, docs/design.md "Hot and cold").

Both point shapes are read, in any mix (request.points_of_item): an item per market and Time holding its series in a
`series` map (written since issue 11), and the single points written before. A one-zone query keeps the members
of that zone and filters single points server-side on `zk` (items without `zk` pass that filter).

What a request may ask and cost is request.py's; an optional `timeout` (seconds) stops the query before its next
request once it has run that long. Why an empty answer is empty is hints.py's (`answer_history` keeps what it
needs). The command line is `spotlake history` (spotlake_assets/cli.py).
"""

from __future__ import annotations

import threading
import time as clock
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from spotlake_assets.core import history_keys as keys

from .archive import ArchiveSource
from .request import (
    ALL,
    MAX_POINTS,
    MAX_REGION_DAYS,
    READ_UNITS_PER_REGION_DAY,
    RECORD_FIELDS,
    OverBudgetError,
    ReadLimitError,
    ReadStats,
    Request,
    TooManyPointsError,
    over_budget_message,
    points_of_item,
    to_record,
    validate,
)

# botocore keeps 10 connections per client by default; more threads would only wait for one
QUERY_WORKERS = 10


class HistoryQueryError(RuntimeError):
    """A DynamoDB request of the history query failed."""


class HistoryQueryTimeout(HistoryQueryError):
    """The query ran longer than its `timeout` and stopped before its next request."""


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
        request: Request,
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
            hi = keys.points_between(archive_last, archive_last)[1]
            yield self._archived(self.archive.points(pk, None if first is None else keys.check_time(first), hi))
            if last < boundary:
                return
            first = boundary
        if first is None:
            pages = self._query(pk, "sk <= :hi", {":hi": keys.points_between(last, last)[1]})
        else:
            lo, hi = keys.points_between(first, last)
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
    """What `answer_history` found: the records, and what resources/query_api/hints.py needs to say why they may
    be none without reading again (the validated request; the reader, holding the regions index if it was read)."""

    records: list[dict[str, Any]]
    request: Request
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
    request = validate(instance_type, region, availability_zone, instance_tier, start, end, max_points)
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


