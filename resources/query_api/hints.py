"""Why a history answer is empty, in one line (issue 17: a mistyped query answered a bare header).

`query_with_hint` runs the history query (resources/query_api/reader.py) and, when nothing matched, says which of
these it is, from the type's regions index item (pk `<type>#__regions__`, written before any point of the type):
- no index item: nothing was ever stored for the type, `no such instance type 'NoSuchType_v9'`, with the nearest
  known names when the caller can list them cheaply (`known_types`: the command line reads the site's association
  file; the query API has no such list and names none);
- the asked region is not in the index: `no such region 'Mars North'` (or, for a real Azure region the type is not
  stored in, `no data for D2s_v3 in region ...`), with the type's regions nearest the name;
- otherwise: `no data for D2s_v3 in US East between <start> and <end>` (the range, zone or tier holds nothing).

Cost: the index is one `GetItem` of one small item (half a read unit), sent only for an empty answer, and only
when the query did not read it already (`Region=*` reads it to find its regions). So a hint adds at most one small
read to a request that read little (docs/web-site.md "The read budget"); it is counted in the request's ReadStats
and stops at the query's deadline like every read. A read that fails leaves the answer without a hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

from resources.query_api.reader import HistoryAnswer, HistoryQueryError, answer_history
from resources.query_api.request import ALL, instance_type_name
from spotlake_assets.core.azure_regions import region_table

NEAREST = 3  # names offered
NEAREST_CUTOFF = 0.4  # difflib similarity below which a name is not offered as "nearest"


def query_with_hint(
    client_or_resource: Any,
    *,
    known_types: Callable[[], Iterable[str]] | None = None,
    **query: Any,
) -> tuple[list[dict[str, Any]], str | None]:
    """(records, hint): `query_history`'s records for `query` (its keyword arguments, its errors) and, when there
    are none, one line saying why (None when there are records or the hint's read failed). `known_types` lists
    the instance types the history knows; it is called only for a type without data."""
    answer = answer_history(client_or_resource, **query)
    if answer.records:
        return answer.records, None
    return answer.records, explain_empty(
        answer,
        instance_type=query["instance_type"],
        region=query.get("region", ALL),
        availability_zone=query.get("availability_zone", ALL),
        instance_tier=query.get("instance_tier", ALL),
        known_types=known_types,
    )


def explain_empty(
    answer: HistoryAnswer,
    *,
    instance_type: Any,
    region: Any = ALL,
    availability_zone: Any = ALL,
    instance_tier: Any = ALL,
    known_types: Callable[[], Iterable[str]] | None = None,
) -> str | None:
    """Why `answer` (with no records) is empty; None when the regions index could not be read."""
    request = answer.request
    name = instance_type_name(instance_type)
    try:
        regions = answer.reader.type_regions()
    except (HistoryQueryError, ValueError):  # a failed or over-budget read: the empty answer stands without a hint
        return None
    if not regions:
        return unknown_type(name, list(known_types()) if known_types else [])
    asked = str(region).strip()
    if request.region_key is not None and request.region_key not in regions:
        return unknown_region(name, asked, regions)
    where = f"in {display_region(asked)}" if request.region_key is not None else f"in any of its {len(regions)} regions"
    chosen = (("zone", availability_zone, request.zone_key), ("tier", instance_tier, request.tier_key))
    only = "".join(f" {label} {str(value).strip()}" for label, value, key in chosen if key is not None)
    return f"no data for {name} {where}{' for' + only if only else ''} between {request.first} and {request.last}"


def unknown_type(name: str, known: list[str]) -> str:
    """A type with no regions index: nothing was ever stored for it."""
    close = nearest(name, known)
    if close:
        return f"no such instance type {name!r}; nearest known: {', '.join(close)}"
    if known:
        return f"no such instance type {name!r}; none of the {len(known)} known types is close"
    return f"no such instance type {name!r}: the history holds nothing for it"


def unknown_region(name: str, asked: str, region_keys: list[str]) -> str:
    """A region the type is not stored in: a name Azure does not have, or a real region without this type."""
    stored = [display_region(key) for key in region_keys]
    close = nearest(asked, stored)
    others = f"nearest known for {name}: {', '.join(close)}" if close else (
        f"{name} is stored in {len(stored)} regions, e.g. {', '.join(stored[:NEAREST])}"
    )  # fmt: skip
    if asked.casefold() in _display_names():
        return f"no data for {name} in region {display_region(asked)!r}; {others}"
    return f"no such region {asked!r}; {others}"


def nearest(word: str, names: Iterable[str]) -> list[str]:
    """The names closest to `word`, compared case-insensitively, in their own spelling."""
    by_key = {n.casefold(): n for n in names}
    return [by_key[k] for k in difflib.get_close_matches(word.casefold(), by_key, n=NEAREST, cutoff=NEAREST_CUTOFF)]


def display_region(region: str) -> str:
    """A region's display name as Azure spells it (`us east` -> `US East`) when the region list knows it."""
    return _display_names().get(region.strip().casefold(), region.strip())


def _display_names() -> dict[str, str]:
    return {r.display_name.casefold(): r.display_name for r in region_table()}
