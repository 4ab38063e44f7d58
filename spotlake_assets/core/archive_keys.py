"""The monthly archive of the time series: where its objects live, how long DynamoDB keeps an item, and which tier
holds which times (docs/contract.md "The archive", docs/design.md "Hot and cold").

Standard library only: the query Lambda reads the archive with it (resources/query_api/package.py).

- Every item of the DynamoDB history carries `expires_at` (epoch seconds): its `Time` (a checkpoint: its `AsOf`) plus
  RETENTION. DynamoDB's TTL deletes it once that has passed, but only while TTL is enabled on the table, and the
  collector enables it only while every month whose items may expire is archived and verified
  (resources/archive_expiry.py). So an item is never gone from both places.
- A month is the data times (`Time`) from its first day 00:00:00 to its last day 23:59:59. A month is archived whole.
- The query reads times before `hot_from` from the archive and the rest from DynamoDB.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

ARCHIVE_PREFIX = "archive/azure/history"
INDEX_KEY = f"{ARCHIVE_PREFIX}/verified-months.json"
EXPIRY_ATTRIBUTE = "expires_at"
# The web site asks at most 32 days back (+1 day for the as-of-start checkpoint); a week more lets the month's
# archive be built and verified before its first items can expire (a month's first item expires 9-12 days after
# the month ends).
RETENTION = timedelta(days=40)
# Reads trust DynamoDB only for items at least this far from their expiry (clock skew, the guard's lag).
READ_MARGIN = timedelta(days=1)
# The guard disables TTL this long before an unverified month's first item could expire (it runs every 10 minutes;
# a TTL change takes up to an hour to apply).
GUARD_MARGIN = timedelta(days=2)
# A month is checked again this long before it becomes due (first_expiry - GUARD_MARGIN): a check older than that
# does not let its items expire.
RECHECK_BEFORE_DUE = timedelta(days=1)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MONTH_FORMAT = "%Y-%m"


def check_month(month: str) -> str:
    """`month` if it is `YYYY-MM`."""
    try:
        parsed = datetime.strptime(month, MONTH_FORMAT)
    except (TypeError, ValueError):
        raise ValueError(f"month {month!r} is not of the form YYYY-MM") from None
    if parsed.strftime(MONTH_FORMAT) != month:
        raise ValueError(f"month {month!r} is not zero-padded YYYY-MM")
    return month


def month_of(time: str) -> str:
    """The month (YYYY-MM) of a dataset `Time`."""
    return check_month(time[:7])


def month_start(month: str) -> datetime:
    """The first instant of a month, UTC (naive)."""
    return datetime.strptime(check_month(month), MONTH_FORMAT)


def next_month(month: str) -> str:
    start = month_start(month)
    return (start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
            ).strftime(MONTH_FORMAT)  # fmt: skip


def previous_month(month: str) -> str:
    start = month_start(month)
    return (start.replace(year=start.year - 1, month=12) if start.month == 1 else start.replace(month=start.month - 1)
            ).strftime(MONTH_FORMAT)  # fmt: skip


def months_between(first: str, last: str) -> list[str]:
    """Every month from `first` to `last`, both included (empty when last is before first)."""
    out, month = [], check_month(first)
    while month <= check_month(last):
        out.append(month)
        month = next_month(month)
    return out


def expires_at(time: str) -> int:
    """The TTL value of an item of `Time` (or a checkpoint's `AsOf`): epoch seconds of time + RETENTION."""
    moment = datetime.strptime(time, TIME_FORMAT).replace(tzinfo=UTC)
    return int((moment + RETENTION).timestamp())


def first_expiry(month: str) -> datetime:
    """When the earliest item a month can hold may expire (naive UTC)."""
    return month_start(month) + RETENTION


def changes_key(month: str, part: int) -> str:
    return f"{ARCHIVE_PREFIX}/changes/month={check_month(month)}/part-{part:02d}.parquet"


def checkpoints_key(month: str, part: int) -> str:
    return f"{ARCHIVE_PREFIX}/checkpoints/month={check_month(month)}/part-{part:02d}.parquet"


def lookup_key(month: str, pk: str) -> str:
    """The query API's file of one market (`pk` = `{type}#{region}`) in one month: its DynamoDB items, typed."""
    return f"{ARCHIVE_PREFIX}/lookup/{check_month(month)}/{quote(pk, safe='')}.json.gz"


def manifest_key(month: str) -> str:
    return f"{ARCHIVE_PREFIX}/manifests/{check_month(month)}.json"


def verified_key(month: str) -> str:
    return f"{ARCHIVE_PREFIX}/manifests/{check_month(month)}.verified.json"


def not_expiring_from(now: datetime) -> str:
    """The earliest `Time` whose items are at least READ_MARGIN from their expiry at `now` (naive: UTC)."""
    naive = now if now.tzinfo is None else now.astimezone(UTC).replace(tzinfo=None)
    return (naive - RETENTION + READ_MARGIN).strftime(TIME_FORMAT)


def hot_from(now: datetime, history_from: str | None, verified: set[str] | list[str]) -> str | None:
    """The earliest `Time` from which DynamoDB holds every item (a `Time` string), or None when it holds all of
    them: the earlier of the first month from `history_from` that is not verified (its items never expire) and
    the times whose items are at least READ_MARGIN from expiry. Everything before it is in verified months."""
    if history_from is None:
        return None
    month, done = check_month(history_from), set(verified)
    while month in done:
        month = next_month(month)
    boundary = min(month_start(month), datetime.strptime(not_expiring_from(now), TIME_FORMAT))
    if boundary <= month_start(check_month(history_from)):
        return None
    return boundary.strftime(TIME_FORMAT)
