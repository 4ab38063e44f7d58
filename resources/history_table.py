"""The Azure time series in DynamoDB: idempotent loads of changed rows, daily checkpoints, the regions index.

Item keys and shapes: spotlake_assets/core/history_keys.py. The changed rows of a market (type, region) at one
`Time` are one item, its `series` map holding a member per series; a load writes every such item whole from its
own rows, so an item never mixes members of two runs. Loads use `BatchWriteItem` (25 items a call, calls in
parallel); `UnprocessedItems` are retried with backoff for a bounded number of rounds, then a clear error says how
many items are left. Numbers go to DynamoDB as numbers built from the value's decimal string (never a binary
float, never NaN): missing numbers are stored as the dataset shows them (-1, and 0 for T2/T3), missing strings as
`N/A`.

Only the prod environment may write the production table `azure`: any other `env` is refused before a client
exists (docs/design.md "Environments": test must never write prod).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import PrivateAttr

from spotlake_assets.core import archive_keys, layout
from spotlake_assets.core import history_keys as keys
from spotlake_assets.core.timekeys import data_time
from spotlake_assets.core.transforms.state import FLOAT_COLUMNS, INT_COLUMNS, MISSING_TEXT, ROW_COLUMNS

from . import state_chain
from .aws import describe_error, error_code, make_client
from .lockdown import EnvironmentBound
from .retry import Backoff
from .s3 import S3Store
from .settings import PROD_TABLE, Settings

BATCH_SIZE = 25  # BatchWriteItem's limit
STRING_COLUMNS = [col for col in ROW_COLUMNS if col not in FLOAT_COLUMNS and col not in INT_COLUMNS]
# What a missing number is stored as: the dataset's fill (docs/contract.md "Missing values").
MISSING_NUMBER = {**dict.fromkeys(FLOAT_COLUMNS + INT_COLUMNS, -1), "T2": 0, "T3": 0}


class HistoryTableError(RuntimeError):
    """A DynamoDB request of the history store failed."""


class WriteRefusedError(HistoryTableError):
    """A non-prod environment aimed at the production table (raised before any request)."""


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


def batch_write(
    client: Any,
    table: str,
    requests: list[dict[str, Any]],
    *,
    max_rounds: int,
    backoff: Backoff,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Write up to 25 requests with `BatchWriteItem`, retrying `UnprocessedItems` with backoff for at most
    `max_rounds` calls; raises HistoryTableError naming the table and the items left."""
    pending = requests
    rng = random.Random()
    for attempt in range(max_rounds):
        if attempt:
            sleep(backoff.delay(attempt - 1, rng=rng))
        try:
            response = client.batch_write_item(RequestItems={table: pending})
        except (ClientError, BotoCoreError) as exc:
            raise HistoryTableError(f"BatchWriteItem on table {table!r} failed: {describe_error(exc)}") from exc
        pending = response.get("UnprocessedItems", {}).get(table, [])
        if not pending:
            return
    raise HistoryTableError(
        f"BatchWriteItem on table {table!r}: {len(pending)} of {len(requests)} items still unprocessed after "
        f"{max_rounds} rounds (table throttled or capacity exhausted)"
    )


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
    """A day's checkpoint (HistoryTable.checkpoint_items) of state rows, to build and write a chunk of markets at a
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


class HistoryTable(EnvironmentBound):
    """The changed rows of the Azure dataset as a time series in one DynamoDB table (see keys.py). The table, its
    endpoint and the environment come from the environment only (resources/lockdown.py)."""

    PROTECTED = {
        "table_name": "SPOTLAKE_DYNAMODB_TABLE",
        "endpoint_url": "SPOTLAKE_AWS_ENDPOINT_URL",
        "region_name": "SPOTLAKE_AWS_REGION",
        "env": "SPOTLAKE_ENV",
    }

    table_name: str
    endpoint_url: str | None = None  # None: the real AWS endpoint; the local stack points this at moto
    region_name: str = "us-west-2"
    env: str = "local"  # only "prod" may write the production table
    write_workers: int = 8  # BatchWriteItem calls in flight
    max_write_rounds: int = 8  # calls per batch before unprocessed items are an error
    backoff_base_seconds: float = 0.05
    backoff_max_seconds: float = 5.0

    _client: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _registered: set[tuple[str, str]] = PrivateAttr(default_factory=set)

    @classmethod
    def settings_values(cls, settings: Settings) -> dict[str, Any]:
        return dict(
            table_name=settings.dynamodb_table,
            endpoint_url=settings.aws_endpoint_url,
            region_name=settings.aws_region,
            env=settings.env,
        )

    def check_guards(self) -> None:
        if self.table_name == PROD_TABLE and self.env != "prod":
            raise WriteRefusedError(f"refused to use the production table {PROD_TABLE!r} in environment {self.env!r}")

    @property
    def client(self) -> Any:
        """The boto3 client, made on first use and shared by threads; the production-table guard sits here, so
        no request can be sent before it."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self.check_guards()
                    self._client = make_client(
                        "dynamodb",
                        endpoint_url=self.endpoint_url,
                        region_name=self.region_name,
                        max_pool_connections=max(16, self.write_workers),
                    )
        return self._client

    def _fail(self, operation: str, exc: Exception) -> HistoryTableError:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return HistoryTableError(f"{operation} on table {self.table_name!r}{where} failed: {describe_error(exc)}")

    def ensure_table(self, client: Any = None) -> bool:
        """Create the table (pk/sk strings, on-demand billing) if it is missing; True if it was created.
        `client`: another boto3 DynamoDB client to create it with (the local stack passes its own)."""
        client = client or self.client
        try:
            client.describe_table(TableName=self.table_name)
            return False
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise self._fail("DescribeTable", exc) from exc
        try:
            client.create_table(
                TableName=self.table_name,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            # ResourceInUseException: a concurrent creator won, wait for its table below
            if error_code(exc) != "ResourceInUseException":
                raise self._fail("CreateTable", exc) from exc
        client.get_waiter("table_exists").wait(TableName=self.table_name, WaiterConfig={"Delay": 1})
        return True

    def register_regions(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Add (instance type, region) pairs to the types' regions index items (`ADD` to a string set, so
        idempotent); pairs this process registered already are skipped. Returns how many pairs were sent."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for instance_type, region in pairs:
            pair = (keys.key_part(instance_type, name="InstanceType"), keys.key_part(region, name="Region"))
            if pair not in self._registered:
                wanted[pair[0]].add(pair[1])
        for type_key, regions in wanted.items():
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key={name: {"S": value} for name, value in keys.regions_index_key(type_key).items()},
                    UpdateExpression="ADD #regions :regions",
                    ExpressionAttributeNames={"#regions": keys.REGIONS_ATTRIBUTE},
                    ExpressionAttributeValues={":regions": {"SS": sorted(regions)}},
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._fail(f"UpdateItem of the regions of {type_key!r}", exc) from exc
            with self._lock:
                self._registered.update((type_key, region) for region in regions)
        return sum(len(regions) for regions in wanted.values())

    def _write_items(self, items: list[dict[str, Any]]) -> int:
        """Put `items` (unique keys) in parallel batches of 25; returns how many were written."""
        return self._batch([{"PutRequest": {"Item": item}} for item in items])

    def delete_points(self, keys: Iterable[tuple[str, str]]) -> int:
        """Delete items by (pk, sk), e.g. points a re-run of a partition no longer writes; returns how many."""
        return self._batch([{"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}} for pk, sk in keys])

    def _batch(self, requests: list[dict[str, Any]]) -> int:
        """Send put/delete requests in parallel batches of 25 with the unprocessed-items retry."""
        chunks = [requests[i : i + BATCH_SIZE] for i in range(0, len(requests), BATCH_SIZE)]
        if not chunks:
            return 0
        client = self.client
        with ThreadPoolExecutor(max_workers=min(self.write_workers, len(chunks))) as pool:
            futures = [
                pool.submit(
                    batch_write,
                    client,
                    self.table_name,
                    chunk,
                    max_rounds=self.max_write_rounds,
                    backoff=Backoff(base_seconds=self.backoff_base_seconds, max_seconds=self.backoff_max_seconds),
                )
                for chunk in chunks
            ]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in done if f.exception() is not None), None)
            if failed is not None:
                pool.shutdown(cancel_futures=True)  # do not keep writing after the first failure
                raise failed.exception()  # type: ignore[misc]
        return len(requests)

    def write_rows(self, rows: pd.DataFrame) -> int:
        """Store changed rows (columns as in the dataset) as points, one item per market and Time (point_items);
        re-writing the same rows writes the same items. Registers their (type, region) pairs first. Returns the
        number of items written."""
        return len(self.write_points(rows))

    def write_points(self, rows: pd.DataFrame) -> list[tuple[str, str]]:
        """write_rows, returning the (pk, sk) of the items written. An item already stored under one of these
        keys is replaced whole (PutItem), so rows must hold every point of their markets at their times."""
        items = point_items(rows)
        self.register_regions(zip(rows["InstanceType"], rows["Region"], strict=True))
        self._write_items(items)
        return [(item["pk"]["S"], item["sk"]["S"]) for item in items]

    def load_partition(
        self,
        store: S3Store,
        partition_key: str,
        rows: pd.DataFrame,
        *,
        checkpoint_of: pd.DataFrame | None = None,
        continues: str | None = None,
    ) -> tuple[int, int, int]:
        """Make the partition's history durable, then commit it: write its points (and, at a day's first
        collection, the checkpoint of `checkpoint_of`, the state's series), delete the points an earlier run of it
        wrote and this one does not, and write its manifest of keys last, as the commit (resources/state_chain.py)
        naming the partition whose state its merge continued. Returns (points written, i.e. rows, stale items
        deleted, checkpoint items written).

        Every point item is built whole from this run's rows (point_items) and put, replacing the earlier run's item
        of the same (market, Time) with no stale member left; an item of the earlier run this one does not write
        (its manifest lists it) is deleted, single points of a run before the grouped shape included.

        Crash-safe in every order of kills: before any item is written the manifest already lists every key an
        earlier run wrote and every key this one will write (marked incomplete), so a re-run still finds and
        deletes what it no longer writes, and the partition is not committed until the last write."""
        manifest = layout.history_manifest_key(partition_key)
        previous = store.get_from(store.write_bucket, manifest)
        earlier = {tuple(k) for k in json.loads(previous)} if previous else set()
        points = point_items(rows)
        checkpoints = None if checkpoint_of is None else CheckpointChunks(checkpoint_of, data_time(partition_key))
        keys = {(item["pk"]["S"], item["sk"]["S"]) for item in points} | (checkpoints.keys if checkpoints else set())

        def write_manifest(listed: set[tuple[str, str]], complete: bool) -> None:
            metadata = {state_chain.COMPLETE: "true" if complete else "false", state_chain.CONTINUES: continues or ""}
            body = json.dumps(sorted(map(list, listed))).encode()
            store.put(manifest, body, content_type="application/json", metadata=metadata)

        write_manifest(earlier | keys, complete=False)
        self.register_regions(zip(rows["InstanceType"], rows["Region"], strict=True))
        if checkpoint_of is not None:
            self.register_regions(zip(checkpoint_of["InstanceType"], checkpoint_of["Region"], strict=True))
        self._write_items(points)
        if checkpoints is not None:
            self._write_checkpoint(checkpoints)
        deleted = self.delete_points(sorted(earlier - keys))
        write_manifest(keys, complete=True)
        return len(rows), deleted, len(checkpoints.keys) if checkpoints else 0

    def write_checkpoint(self, state_rows: pd.DataFrame, as_of: str | date | datetime) -> int:
        """Store one checkpoint item per (type, region) holding the last stored row of each of its series (see
        checkpoint_items). Returns the number of checkpoint items written."""
        self.register_regions(zip(state_rows["InstanceType"], state_rows["Region"], strict=True))
        return self._write_checkpoint(CheckpointChunks(state_rows, as_of))

    def _write_checkpoint(self, checkpoint: CheckpointChunks) -> int:
        """Build and write the checkpoint's items a chunk of markets at a time; returns how many were written."""
        return sum(self._write_items(checkpoint_items(rows, checkpoint.as_of)) for rows in checkpoint.rows())

    def checkpoint_items(self, state_rows: pd.DataFrame, as_of: str | date | datetime) -> list[dict[str, Any]]:
        """checkpoint_items of `state_rows` (kept as a method for its callers)."""
        return checkpoint_items(state_rows, as_of)

    def time_to_live_enabled(self) -> bool:
        """Whether DynamoDB's TTL deletes expired items of the table now (ENABLED, or ENABLING)."""
        try:
            description = self.client.describe_time_to_live(TableName=self.table_name)["TimeToLiveDescription"]
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("DescribeTimeToLive", exc) from exc
        return description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")

    def set_time_to_live(self, enabled: bool) -> None:
        """Switch DynamoDB's TTL on `expires_at` on or off (resources/archive_expiry.py decides which)."""
        spec = {"Enabled": enabled, "AttributeName": archive_keys.EXPIRY_ATTRIBUTE}
        try:
            self.client.update_time_to_live(TableName=self.table_name, TimeToLiveSpecification=spec)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(f"UpdateTimeToLive (Enabled={enabled})", exc) from exc

    def count_items(self) -> int:
        """Every item of the table (a `Scan` with Select=COUNT: for tests and operators, not queries)."""
        try:
            pages = self.client.get_paginator("scan").paginate(TableName=self.table_name, Select="COUNT")
            return sum(page["Count"] for page in pages)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("Scan (count)", exc) from exc
