"""Item keys of the Azure time series in DynamoDB (tables `azure`, `azure-test`, `azure-local`).

What the store must serve (docs/contract.md "The time series"), with
`Query`/`GetItem` only, never `Scan`: one instance type, one region or all, one zone or all, a time range of
at most a month, plus the value of every matching series as of the range's start. Only changed rows are
stored, so "as of start" is the last point before start, which may lie far back.

Items (one table, string keys `pk` (hash) and `sk` (range); every key part stripped and case-folded):

| item | pk | sk | other attributes |
|---|---|---|---|
| points of a market at a Time | `{type}#{region}` | `{Time}` | `InstanceType`, `Region`, `series` (id -> point) |
| single point (until issue 11) | `{type}#{region}` | `{Time}#{series id}` | the row's columns and `zk` |
| checkpoint | `{type}#{region}` | `~checkpoint#{as_of Time}` | `AsOf`, `series` (id -> the full row) |
| regions of a type | `{type}#__regions__` | `~regions` | `regions`: a string set |

A series id is `{zone}#{desired count:02d}#{tier}`. A point item holds every series of its market that changed
at `Time`, each member the row's columns other than those the item states once (`InstanceType`, `Region`, and
`Time`, its sort key); docs/history-cost.md measures why (61% fewer write units than one item per point). Single
points written before stay readable: the reader tells the two apart by the `series` attribute.

Why this shape:
- One partition key per (type, region): a one-region query is one `Query` reading only that region's series
  (about 4 zones x 11 desired counts), and the load of a type spreads over ~60 partition keys instead of one
  hot key. "All regions" is one `Query` per region, run in parallel.
- The sort key is (or, for a single point, starts with) the fixed-width `Time`, so
  `sk BETWEEN "{start}" AND "{end}$"` is exactly the points with start <= Time <= end ('$' is the character
  after the separator '#'). A point item's key is (market, Time) and a partition writes it whole from its own
  rows, so re-writing a partition writes the same items (idempotent, no duplicates, no stale members). The zone
  is not in the partition key: a region has at most four zones, so a one-zone query reads at most 4x what it
  keeps (members of other zones dropped by the reader; single points filtered server-side on `zk`), while a
  zone-in-pk design would need four times the `Query` calls for the common all-zones query.
- "Which regions does a type have" comes from one small index item (a string set grown with `ADD`, which is
  idempotent), so "all regions" needs a `GetItem`, not a `Scan`. It is written before the points it announces:
  a crash between leaves an index entry without data (harmless), never data nobody can find.
- As-of-start needs a bound, since a series may not have changed for weeks. Once a UTC day the loader writes a
  checkpoint item per pk holding the last stored value of every series of that pk (a map keyed by
  `{zone}#{desired count:02d}#{tier}`, each value the full row with its real `Time`). As of start = the newest
  checkpoint before start, overlaid with the points between the checkpoint and start: two bounded `Query`
  calls per pk (at most a day of changes when checkpoints are daily).
  Improvement on a `{day} 00:00:00#~checkpoint` sort key: prefixing checkpoints with `~` (after every digit)
  keeps them out of every time-range `Query` and lets "newest checkpoint before start" be a single
  descending `Query` with `Limit=1` that also finds an older checkpoint when a day's one is missing (outage).
  Its sort key is its `as_of` time, the time up to which (inclusive) the state it holds is complete.
"""

from __future__ import annotations

from datetime import datetime, timedelta

SEP = "#"
# The character right after SEP: "{t}#..." < "{t}$" for every point of time t, so it closes a range at t.
SEP_NEXT = chr(ord(SEP) + 1)
CHECKPOINT_PREFIX = "~checkpoint" + SEP
REGIONS_PK_SUFFIX = "__regions__"
REGIONS_SK = "~regions"
REGIONS_ATTRIBUTE = "regions"  # string set of region key parts in the index item
ZONE_ATTRIBUTE = "zk"  # single points: the zone key part, filterable (DynamoDB filters cannot use key attributes)
SERIES_ATTRIBUTE = "series"  # point items and checkpoints: the map of series id -> member
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
ONE_SECOND = timedelta(seconds=1)


def key_part(value: object, *, name: str) -> str:
    """A value as a key part: stripped and case-folded; refuses empty values and the separator."""
    part = str(value).strip().casefold()
    if not part or SEP in part:
        raise ValueError(f"{name} {value!r} cannot be part of a DynamoDB key (empty or contains {SEP!r})")
    return part


def partition_key(instance_type: object, region: object) -> str:
    return key_part(instance_type, name="InstanceType") + SEP + key_part(region, name="Region")


def series_id(zone: object, desired_count: int, tier: object) -> str:
    """The series within a pk: the sort-key suffix of its points and its key in a checkpoint map."""
    return SEP.join(
        (
            key_part(zone, name="AvailabilityZone"),
            f"{int(desired_count):02d}",
            key_part(tier, name="InstanceTier"),
        )
    )


def point_sort_key(time: str, zone: object, desired_count: int, tier: object) -> str:
    """The sort key of a single point (the shape written until issue 11; still read, see `point_item_sort_key`)."""
    return f"{check_time(time)}{SEP}{series_id(zone, desired_count, tier)}"


def point_item_sort_key(time: str) -> str:
    """The sort key of the item holding the points of a market at `time`: the time itself."""
    return check_time(time)


def series_of_sort_key(sk: str) -> str:
    """The series id of a single point's sort key (inverse of `point_sort_key` after the time)."""
    return sk.split(SEP, 1)[1]


def zone_of_series(series: str) -> str:
    """The zone key part of a series id."""
    return series.split(SEP, 1)[0]


def checkpoint_sort_key(as_of: str) -> str:
    return CHECKPOINT_PREFIX + check_time(as_of)


def regions_index_key(instance_type: object) -> dict[str, str]:
    return {"pk": key_part(instance_type, name="InstanceType") + SEP + REGIONS_PK_SUFFIX, "sk": REGIONS_SK}


def points_between(first: str, last: str) -> tuple[str, str]:
    """`sk BETWEEN lo AND hi` bounds of the points with first <= Time <= last (both inclusive)."""
    return check_time(first), check_time(last) + SEP_NEXT


def check_time(time: str) -> str:
    """`time` if it is a dataset `Time` (`YYYY-MM-DD HH:MM:SS`): the sort order relies on that fixed width."""
    try:
        parsed = datetime.strptime(time, TIME_FORMAT)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Time {time!r} is not of the form YYYY-MM-DD HH:MM:SS") from exc
    if parsed.strftime(TIME_FORMAT) != time:
        raise ValueError(f"Time {time!r} is not zero-padded YYYY-MM-DD HH:MM:SS")
    return time


def format_time(t: datetime) -> str:
    return t.strftime(TIME_FORMAT)


def shift(time: str, delta: timedelta) -> str:
    """A dataset `Time` moved by `delta` (used for the exclusive bounds around start and a checkpoint)."""
    return format_time(datetime.strptime(check_time(time), TIME_FORMAT) + delta)
