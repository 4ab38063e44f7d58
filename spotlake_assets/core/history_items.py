"""DynamoDB items of the Azure history, built from dataset rows: pure (no client, no I/O).

Item keys and shapes: history_keys.py. The changed rows of a market (type, region) at one `Time` are one point
item, its `series` map holding a member per series (point_items); a day's checkpoint is one item per market holding
the last stored row of each of its series (checkpoint_items, built a chunk of markets at a time by
CheckpointChunks). Numbers are typed DynamoDB numbers built from the value's decimal string (never a binary float,
never NaN): missing numbers are stored as the dataset shows them (-1, and 0 for T2/T3), missing strings as `N/A`.
The writer is resources/history_table.py.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from . import archive_keys
from . import history_keys as keys
from .columns import FLOAT_COLUMNS, INT_COLUMNS, MISSING_TEXT, ROW_COLUMNS

STRING_COLUMNS = [col for col in ROW_COLUMNS if col not in FLOAT_COLUMNS and col not in INT_COLUMNS]
# What a missing number is stored as: the dataset's fill (docs/contract.md "Missing values").
MISSING_NUMBER = {**dict.fromkeys(FLOAT_COLUMNS + INT_COLUMNS, -1), "T2": 0, "T3": 0}


def to_number(value: Any, column: str) -> dict[str, str]:
    """A typed DynamoDB number from a cell: the Decimal of its decimal string, missing -> the dataset fill."""
    if pd.isna(value):
        return {"N": str(MISSING_NUMBER[column])}
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"column {column} holds {value!r}: DynamoDB numbers must be finite")
    if column in INT_COLUMNS:
        if not number.is_integer():
            raise ValueError(f"column {column} holds {value!r}, expected an integer")
        return {"N": str(int(number))}
    # repr gives the shortest decimal string that round-trips, so 0.1 stays 0.1 (Decimal(0.1) would not)
    return {"N": str(Decimal(repr(number)))}


# What a member of a `series` map leaves out of a row's item (row_items): keys, and what the map's item states.
CHECKPOINT_MEMBER_OMITS = frozenset({"pk", "sk"})
POINT_MEMBER_OMITS = frozenset({"pk", "sk", keys.ZONE_ATTRIBUTE, "Time", "InstanceType", "Region"})


def row_items(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """One typed DynamoDB item per row: the row's columns plus `pk`, `sk` and the filterable zone key (the
    single-point shape; the encoder behind point items and checkpoint members)."""
    missing = [col for col in ROW_COLUMNS if col not in rows.columns]
    if missing:
        raise ValueError(f"rows for the DynamoDB history lack columns {missing}")
    text = {col: rows[col].astype("object").where(rows[col].notna(), MISSING_TEXT).tolist() for col in STRING_COLUMNS}
    numbers = {col: rows[col].astype("object").tolist() for col in FLOAT_COLUMNS + INT_COLUMNS}
    items = []
    for i in range(len(rows)):
        attrs: dict[str, Any] = {col: {"S": str(text[col][i])} for col in STRING_COLUMNS}
        attrs.update({col: to_number(numbers[col][i], col) for col in numbers})
        zone, count, tier = (
            text["AvailabilityZone"][i],
            int(attrs["DesiredCount"]["N"]),
            text["InstanceTier"][i],
        )
        items.append(
            {
                "pk": {"S": keys.partition_key(text["InstanceType"][i], text["Region"][i])},
                "sk": {"S": keys.point_sort_key(str(text["Time"][i]), zone, count, tier)},
                keys.ZONE_ATTRIBUTE: {"S": keys.key_part(zone, name="AvailabilityZone")},
                **attrs,
            }
        )
    return items


def series_member(item: dict[str, Any], omit: frozenset[str]) -> dict[str, Any]:
    """A row's item (row_items) as a member of a `series` map: its attributes but `omit`."""
    return {"M": {name: value for name, value in item.items() if name not in omit}}


def point_items(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """One item per (pk, Time) holding the rows of that market at that time: `sk = Time`, `InstanceType` and
    `Region` as the first of its rows spells them, and `series`, a map series id -> the row's other attributes
    (a row spelling InstanceType or Region otherwise keeps its own in its member). Refuses two rows of one series
    and Time."""
    singles = row_items(rows)
    _check_unique(singles)
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for single in singles:
        time = single["Time"]["S"]
        item = grouped.get((single["pk"]["S"], time))
        if item is None:
            item = grouped[(single["pk"]["S"], time)] = {
                "pk": single["pk"],
                "sk": {"S": keys.point_item_sort_key(time)},
                "InstanceType": single["InstanceType"],
                "Region": single["Region"],
                keys.SERIES_ATTRIBUTE: {"M": {}},
                archive_keys.EXPIRY_ATTRIBUTE: {"N": str(archive_keys.expires_at(time))},
            }
        # an attribute the item states is left out of the member only where the member agrees with it
        omit = POINT_MEMBER_OMITS - {name for name in ("InstanceType", "Region") if single[name] != item[name]}
        item[keys.SERIES_ATTRIBUTE]["M"][keys.series_of_sort_key(single["sk"]["S"])] = series_member(single, omit)
    return list(grouped.values())


def _check_unique(items: list[dict[str, Any]]) -> None:
    """BatchWriteItem refuses a batch with a repeated key; two rows of one series and Time are an error."""
    seen: set[tuple[str, str]] = set()
    for item in items:
        key = (item["pk"]["S"], item["sk"]["S"])
        if key in seen:
            raise ValueError(f"two rows share the DynamoDB key pk={key[0]!r} sk={key[1]!r}")
        seen.add(key)


def _state_ends_at(state_rows: pd.DataFrame, as_of: str | date | datetime) -> str:
    """The checkpoint's `as_of` Time; refuses state rows later than it (the state must end there)."""
    as_of_time = _as_of_time(as_of)
    times = state_rows["Time"].dropna().astype(str)
    if len(times) and times.max() > as_of_time:
        raise ValueError(f"checkpoint as of {as_of_time} given a row of Time {times.max()}: the state must end there")
    return as_of_time


def _as_of_time(as_of: str | date | datetime) -> str:
    """A checkpoint's time: a datetime (UTC) or `Time` string as is, a date as its 00:00:00."""
    if isinstance(as_of, datetime):
        return keys.format_time(as_of)
    if isinstance(as_of, date):
        return f"{as_of.isoformat()} 00:00:00"
    return keys.check_time(as_of)


def checkpoint_items(state_rows: pd.DataFrame, as_of: str | date | datetime) -> list[dict[str, Any]]:
    """One checkpoint item per (type, region) holding the last stored row of each of its series.

    `state_rows` must be complete up to `as_of` inclusive and hold nothing later: the state after the
    partition whose data time is `as_of` (a date means its 00:00:00, i.e. the day's first collection).
    """
    as_of_time = _state_ends_at(state_rows, as_of)
    series: dict[str, dict[str, Any]] = defaultdict(dict)
    for item in row_items(state_rows):
        series[item["pk"]["S"]][keys.series_of_sort_key(item["sk"]["S"])] = series_member(
            item, CHECKPOINT_MEMBER_OMITS
        )
    return [
        {
            "pk": {"S": pk},
            "sk": {"S": keys.checkpoint_sort_key(as_of_time)},
            "AsOf": {"S": as_of_time},
            keys.SERIES_ATTRIBUTE: {"M": members},
            archive_keys.EXPIRY_ATTRIBUTE: {"N": str(archive_keys.expires_at(as_of_time))},
        }
        for pk, members in series.items()
    ]


class CheckpointChunks:
    """A day's checkpoint (checkpoint_items) of state rows, to build and write a chunk of markets at a
    time: it holds every series of the state, ~600k at full scale, several GiB as one list of items. `keys` are
    the (pk, sk) of all its items, for the manifest; `rows()` gives the rows of whole markets (pk), about
    `rows_per_chunk` at a time."""

    def __init__(self, state_rows: pd.DataFrame, as_of: str | date | datetime, rows_per_chunk: int = 20_000) -> None:
        self.state_rows, self.as_of, self.rows_per_chunk = state_rows, as_of, rows_per_chunk
        as_of_time = _state_ends_at(state_rows, as_of)  # refused before any write
        text = [state_rows[col].astype("object").where(state_rows[col].notna(), MISSING_TEXT).to_numpy()
                for col in ("InstanceType", "Region")]  # fmt: skip
        pair = pd.DataFrame({"type": text[0], "region": text[1]}).groupby(["type", "region"], sort=False).ngroup()
        firsts = np.unique(pair.to_numpy(), return_index=True)[1]
        pks = np.array([keys.partition_key(text[0][i], text[1][i]) for i in firsts], dtype=object)
        self._pk, uniques = pd.factorize(pks[pair.to_numpy()])
        self.keys = {(pk, keys.checkpoint_sort_key(as_of_time)) for pk in uniques}

    def rows(self) -> Iterator[pd.DataFrame]:
        sizes = np.bincount(self._pk)
        chunk_of_pk = (np.cumsum(sizes) - sizes) // self.rows_per_chunk
        chunk = chunk_of_pk[self._pk]
        for c in np.unique(chunk):
            yield self.state_rows.iloc[np.flatnonzero(chunk == c)]
