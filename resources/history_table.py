"""The Azure time series in DynamoDB: idempotent loads of changed rows, daily checkpoints, the regions index.

Item keys: spotlake_assets/core/history_keys.py; the items, built from rows: spotlake_assets/core/history_items.py.
The changed rows of a market (type, region) at one
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

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import date, datetime
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import PrivateAttr

from spotlake_assets.core import archive_keys
from spotlake_assets.core import history_keys as keys
from spotlake_assets.core.history_items import CheckpointChunks, checkpoint_items, point_items
from spotlake_assets.core.timekeys import data_time

from .aws import describe_error, error_code, make_client
from .continuity import Manifest
from .lockdown import EnvironmentBound
from .retry import Backoff
from .s3 import S3Store
from .settings import PROD_TABLE, Settings

BATCH_SIZE = 25  # BatchWriteItem's limit


class HistoryTableError(RuntimeError):
    """A DynamoDB request of the history store failed."""


class WriteRefusedError(HistoryTableError):
    """A non-prod environment aimed at the production table (raised before any request)."""


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
        wrote and this one does not, and write its manifest of keys last, as the commit (resources/continuity.py)
        naming the partition whose state its merge continued. Returns (points written, i.e. rows, stale items
        deleted, checkpoint items written).

        Every point item is built whole from this run's rows (point_items) and put, replacing the earlier run's item
        of the same (market, Time) with no stale member left; an item of the earlier run this one does not write
        (its manifest lists it) is deleted, single points of a run before the grouped shape included.

        Crash-safe in every order of kills: before any item is written the manifest already lists every key an
        earlier run wrote and every key this one will write (marked incomplete), so a re-run still finds and
        deletes what it no longer writes, and the partition is not committed until the last write."""
        manifest = Manifest(store, partition_key)
        earlier = manifest.earlier_keys()
        points = point_items(rows)
        checkpoints = None if checkpoint_of is None else CheckpointChunks(checkpoint_of, data_time(partition_key))
        keys = {(item["pk"]["S"], item["sk"]["S"]) for item in points} | (checkpoints.keys if checkpoints else set())
        manifest.write_intent(earlier | keys, continues)
        self.register_regions(zip(rows["InstanceType"], rows["Region"], strict=True))
        if checkpoint_of is not None:
            self.register_regions(zip(checkpoint_of["InstanceType"], checkpoint_of["Region"], strict=True))
        self._write_items(points)
        if checkpoints is not None:
            self._write_checkpoint(checkpoints)
        deleted = self.delete_points(sorted(earlier - keys))
        manifest.write_commit(keys, continues)
        return len(rows), deleted, len(checkpoints.keys) if checkpoints else 0

    def write_checkpoint(self, state_rows: pd.DataFrame, as_of: str | date | datetime) -> int:
        """Store one checkpoint item per (type, region) holding the last stored row of each of its series (see
        checkpoint_items). Returns the number of checkpoint items written."""
        self.register_regions(zip(state_rows["InstanceType"], state_rows["Region"], strict=True))
        return self._write_checkpoint(CheckpointChunks(state_rows, as_of))

    def _write_checkpoint(self, checkpoint: CheckpointChunks) -> int:
        """Build and write the checkpoint's items a chunk of markets at a time; returns how many were written."""
        return sum(self._write_items(checkpoint_items(rows, checkpoint.as_of)) for rows in checkpoint.rows())

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
