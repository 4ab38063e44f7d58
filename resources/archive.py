"""The monthly archive on S3: built from the stored change frames and daily states of a month's committed partitions,
written, listed in a manifest, and verified (docs/contract.md "The archive", docs/design.md "Hot and cold").

A build reads each committed partition of the month once (oldest first), splits its rows by instance type into
spill files on local disk (core/archive.BUCKETS), then writes one part at a time: the `changes` and `checkpoints`
Parquet of the part and the lookup file of each market in it. Memory is one part, not the month. The manifest is
written after every file, so a month whose manifest exists has all its files; re-running a month writes the same
bytes (the manifest says when it does not: a partition committed since).

Verification re-reads every file the manifest lists and compares its SHA-256 and row count, and compares the keys of
the lookup files with the keys the month's partitions wrote to DynamoDB (their history manifests, as committed
now). Only a verified month may lose its DynamoDB items (resources/archive_expiry.py).
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spotlake_assets.core import archive, layout, names
from spotlake_assets.core import archive_keys as ak
from spotlake_assets.core.history_items import checkpoint_items, point_items
from spotlake_assets.core.timekeys import PARTITION_FMT, PARTITION_LENGTH, data_time, partition_key_for_data_time
from spotlake_assets.core.transforms.state import state_from_frame

from .continuity import StateChain
from .io_manager import frame_from_parquet
from .s3 import S3Store, Version

JSON = "application/json"
# A month is archived once its last window has been closed this long: the next partitions' recovery (6 partitions)
# and a retry have committed what can be; a partition still uncommitted then is listed as lost.
SETTLE = timedelta(hours=6)
PARALLEL_REQUESTS = 16


class ArchiveError(RuntimeError):
    """The month cannot be archived, or its archive does not verify; the message names the month and the object."""


class MonthNotReady(ArchiveError):
    """The month is not over, or not settled yet."""


@dataclass(frozen=True)
class MonthPartitions:
    """The 10-minute partitions whose data time lies in a month, from the start of history."""

    month: str
    expected: list[str]
    committed: list[str]

    @property
    def lost(self) -> list[str]:
        done = set(self.committed)
        return [key for key in self.expected if key not in done]


def month_partition_keys(month: str, history_start: str) -> list[str]:
    """Partition keys whose data time is in `month` and not before the first partition `history_start`."""
    first = partition_key_for_data_time(ak.month_start(month).replace(tzinfo=UTC))
    last = partition_key_for_data_time(ak.month_start(ak.next_month(month)).replace(tzinfo=UTC) - PARTITION_LENGTH)
    start = max(datetime.strptime(first, PARTITION_FMT), datetime.strptime(history_start, PARTITION_FMT))
    end = datetime.strptime(last, PARTITION_FMT)
    out = []
    while start <= end:
        out.append(start.strftime(PARTITION_FMT))
        start += PARTITION_LENGTH
    return out


def _parallel(function, values: list) -> list:  # noqa: ANN001
    with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
        return list(pool.map(function, values))


@dataclass
class MonthArchive:
    """Builds, writes and verifies the archive of one month in the environment's write bucket."""

    store: S3Store
    history_start: str  # the first 10-minute partition key of the history

    @property
    def first_month(self) -> str:
        """The month (YYYY-MM) of the history's first data time."""
        return f"{data_time(self.history_start):%Y-%m}"

    def partitions(self, month: str, now: datetime) -> MonthPartitions:
        """The month's partitions and which are committed; MonthNotReady before the month is over and settled."""
        ak.check_month(month)
        settled_at = ak.month_start(ak.next_month(month)) + SETTLE
        if now.replace(tzinfo=None) < settled_at:
            raise MonthNotReady(f"month {month} can be archived from {settled_at:%Y-%m-%d %H:%M} UTC (it ends, then "
                                f"{SETTLE} for late commits); now is {now:%Y-%m-%d %H:%M} UTC")  # fmt: skip
        expected = month_partition_keys(month, self.history_start)
        # only partitions with a history manifest can be committed: list them (a month's keys begin with its own
        # month or, for the partition ending at its first 00:00, the month before), then read their commit
        first = [layout.key_stem(names.HISTORY, key) for key in expected[:1]]
        prefixes = {layout.asset_prefix(names.HISTORY) + month, *first}
        listed = {key for prefix in prefixes for key in self.store.iter_keys(prefix, self.store.write_bucket)}
        candidates = [key for key in expected if layout.history_manifest_key(key) in listed]
        commits = _parallel(StateChain(self.store).commit_of, candidates)
        return MonthPartitions(month, expected, [key for key, c in zip(candidates, commits, strict=True) if c])

    def _frame(self, asset: str, key: str) -> pd.DataFrame:
        object_key = layout.frame_key(asset, key)
        data = self.store.get_from(self.store.write_bucket, object_key)
        if data is None:
            where = f"s3://{self.store.write_bucket}/{object_key}"
            raise ArchiveError(f"partition {key} is committed but {where} is missing")
        return frame_from_parquet(data)

    def build(self, parts: MonthPartitions) -> dict[str, Any]:
        """Write the month's files and then its manifest; returns the manifest."""
        month, files = parts.month, []
        with tempfile.TemporaryDirectory(prefix=f"archive-{month}-") as tmp:
            spill = _Spill(Path(tmp))
            for key in parts.committed:  # oldest first, one partition in memory
                spill.add("changes", archive.archive_rows(self._frame(names.CHANGES, key)))
                t = data_time(key)
                if (t.hour, t.minute) == (0, 0):  # the day's checkpoint, as the history load wrote it
                    series = state_from_frame(self._frame(names.STATE, key)).series
                    spill.add("checkpoints", archive.checkpoint_rows(series, f"{t:%Y-%m-%d %H:%M:%S}"))
            spill.close()
            for part in range(archive.BUCKETS):
                files += self._write_part(month, part, spill.read("changes", part), spill.read("checkpoints", part))
        manifest = {
            "month": month,
            "format": 1,
            "retention_days": ak.RETENTION.days,
            "partitions": {"expected": len(parts.expected), "committed": len(parts.committed), "lost": parts.lost},
            "complete": not parts.lost,
            "files": sorted(files, key=lambda f: f["key"]),
        }
        self.store.put(ak.manifest_key(month), _json(manifest), content_type=JSON, public=True)
        return manifest

    def _write_part(self, month: str, part: int, changes: pd.DataFrame | None, checkpoints: pd.DataFrame | None):
        written = []

        def put(key: str, kind: str, body: bytes, count: int) -> None:
            self.store.put(key, body, content_type="application/octet-stream", public=True)
            entry = {"key": key, "kind": kind, "rows": count, "bytes": len(body), "sha256": archive.sha256(body)}
            written.append(entry)

        if changes is not None:
            put(ak.changes_key(month, part), "changes", archive.parquet_bytes(changes), len(changes))
        if checkpoints is not None:
            put(ak.checkpoints_key(month, part), "checkpoints", archive.parquet_bytes(checkpoints), len(checkpoints))
        by_pk: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if changes is not None:
            for item in point_items(changes):
                by_pk[item["pk"]["S"]].append(item)
        if checkpoints is not None:
            for as_of, rows in checkpoints.groupby("AsOf", sort=True):
                for item in checkpoint_items(rows.drop(columns="AsOf"), str(as_of)):
                    by_pk[item["pk"]["S"]].append(item)
        _parallel(lambda pk: put(ak.lookup_key(month, pk), "lookup", archive.lookup_file(by_pk[pk]), len(by_pk[pk])),
                  sorted(by_pk))  # fmt: skip
        return written

    def verify(self, month: str, now: datetime) -> dict[str, Any]:
        """Check the month's archive against its manifest and the DynamoDB keys of its committed partitions; write
        its verification record and add it to the index. ArchiveError names the first fault."""
        raw = self.store.get_from(self.store.write_bucket, ak.manifest_key(month))
        if raw is None:
            raise ArchiveError(f"month {month} has no archive manifest (s3://{self.store.write_bucket}/"
                               f"{ak.manifest_key(month)})")  # fmt: skip
        manifest = json.loads(raw)
        archived_keys: set[tuple[str, str]] = set()

        def check(entry: dict[str, Any]) -> list[tuple[str, str]]:
            data = self.store.get_from(self.store.write_bucket, entry["key"])
            where = f"s3://{self.store.write_bucket}/{entry['key']}"
            if data is None:
                raise ArchiveError(f"month {month}: {where} is missing")
            if archive.sha256(data) != entry["sha256"]:
                raise ArchiveError(f"month {month}: {where} has SHA-256 {archive.sha256(data)}, the manifest "
                                   f"says {entry['sha256']}")  # fmt: skip
            if entry["kind"] == "lookup":
                items = archive.read_lookup_file(data)
                count, found = len(items), [(i["pk"]["S"], i["sk"]["S"]) for i in items]
            else:
                count, found = pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows, []
            if count != entry["rows"]:
                raise ArchiveError(f"month {month}: {where} holds {count} rows, the manifest says {entry['rows']}")
            return found

        for found in _parallel(check, manifest["files"]):
            archived_keys.update(found)
        parts = self.partitions(month, now)
        if parts.lost != manifest["partitions"]["lost"]:
            since = sorted(set(manifest["partitions"]["lost"]) - set(parts.lost))[:5]
            raise ArchiveError(f"month {month}: partitions committed since the archive was built ({since}): re-run it")
        stored = set()
        for listed in _parallel(self._manifest_keys, parts.committed):
            stored.update(listed)
        if stored != archived_keys:
            missing, extra = sorted(stored - archived_keys), sorted(archived_keys - stored)
            raise ArchiveError(f"month {month}: the archive's items differ from DynamoDB's: {len(missing)} missing "
                               f"(first {missing[:3]}), {len(extra)} not in DynamoDB (first {extra[:3]})")  # fmt: skip
        record = {"month": month, "manifest_sha256": archive.sha256(raw), "files": len(manifest["files"]),
                  "items": len(archived_keys), "verified_at": f"{now:%Y-%m-%d %H:%M:%S}"}  # fmt: skip
        self.store.put(ak.verified_key(month), _json(record), content_type=JSON, public=True)
        self._index(month, record)
        return record

    def _manifest_keys(self, partition_key: str) -> list[tuple[str, str]]:
        data = self.store.get_from(self.store.write_bucket, layout.history_manifest_key(partition_key))
        if data is None:
            raise ArchiveError(f"partition {partition_key} has no history manifest")
        return [tuple(key) for key in json.loads(data)]

    def _index(self, month: str, record: dict[str, Any] | None) -> None:
        """Add (or, with None, drop) a month in the index of verified months the query reads."""
        def change(current: Version | None):  # noqa: ANN202
            index = json.loads(current.body) if current else {"months": {}}
            index["history_from"] = self.first_month
            if record is None:
                index["months"].pop(month, None)
            else:
                index["months"][month] = {"manifest_sha256": record["manifest_sha256"],
                                          "verified_at": record["verified_at"]}  # fmt: skip
            index["months"] = dict(sorted(index["months"].items()))
            return Version(_json(index), {}), None

        self.store.update(ak.INDEX_KEY, change, content_type=JSON, public=True, first_from_read_bucket=False)

    def unverify(self, month: str) -> None:
        """Take a month out of the index (its archive failed a check): its items must not expire."""
        self._index(month, None)

    def index(self) -> dict[str, Any]:
        data = self.store.get_from(self.store.write_bucket, ak.INDEX_KEY)
        return json.loads(data) if data else {"months": {}}


class _Spill:
    """Archive rows of a month split by part into Parquet files on local disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.writers: dict[tuple[str, int], pq.ParquetWriter] = {}

    def add(self, kind: str, rows: pd.DataFrame) -> None:
        schema = archive.CHECKPOINTS_SCHEMA if kind == "checkpoints" else archive.CHANGES_SCHEMA
        for part, group in rows.groupby(archive.buckets(rows), sort=True):
            writer = self.writers.get((kind, part))
            if writer is None:
                writer = self.writers[(kind, part)] = pq.ParquetWriter(self.root / f"{kind}-{part:02d}.parquet", schema)
            writer.write_table(pa.Table.from_pandas(group, schema=schema, preserve_index=False))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def read(self, kind: str, part: int) -> pd.DataFrame | None:
        path = self.root / f"{kind}-{part:02d}.parquet"
        return pq.read_table(path).to_pandas() if path.exists() else None


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, indent=1).encode()
