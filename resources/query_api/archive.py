"""The archive tier of the history query: a month of one market read from its lookup file on S3
(docs/contract.md "The archive"; the files are written by resources/archive.py).

A lookup file holds the DynamoDB items of one market (`{type}#{region}`) whose time falls in one month, points and
checkpoints, sorted by sort key, typed as DynamoDB returns them. So the query reads the archive as it reads the
table, with the same code (resources/query_api/reader.py): `points` plays `Query sk BETWEEN`, `newest_checkpoint` plays
the descending `Limit 1` query. Standard library and boto3 only (the query Lambda reads it).
"""

from __future__ import annotations

import gzip
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from spotlake_assets.core import archive_keys as ak
from spotlake_assets.core import history_keys as keys


class ArchiveReadError(RuntimeError):
    """An archive object could not be read (S3 failed, or it is not a lookup file)."""


@dataclass
class ArchiveSource:
    """The archive in `bucket`, read with a boto3 S3 client; files are read once per source (one source serves one
    request). `index`: the verified months (verified-months.json), read on first use unless given."""

    client: Any
    bucket: str
    index: dict[str, Any] | None = None
    gets: int = 0
    bytes_read: int = 0
    _files: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _get(self, key: str) -> bytes | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404") or (code in ("AccessDenied", "403") and not self._listed(key)):
                return None  # without an unconditional ListBucket, S3 answers 403 for a missing key
            raise ArchiveReadError(f"GetObject s3://{self.bucket}/{key} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise ArchiveReadError(f"GetObject s3://{self.bucket}/{key} failed: {exc}") from exc
        with self._lock:
            self.gets += 1
            self.bytes_read += len(body)
        return body

    def _listed(self, key: str) -> bool:
        """Whether `key` exists, by listing its own prefix (the Lambda may list the lookup files' prefix only)."""
        try:
            found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1).get("Contents", [])
        except (ClientError, BotoCoreError) as exc:
            raise ArchiveReadError(f"ListObjectsV2 s3://{self.bucket}/{key} failed: {exc}") from exc
        return any(entry["Key"] == key for entry in found)

    def hot_from(self, now: datetime, first: str) -> str | None:
        """The first `Time` read from DynamoDB (ak.hot_from); a range starting after the retention's margin reads
        DynamoDB only, without reading the index."""
        if first >= ak.not_expiring_from(now):
            return None
        if self.index is None:
            data = self._get(ak.INDEX_KEY)
            self.index = json.loads(data) if data else {}
        return ak.hot_from(now, self.index.get("history_from"), set(self.index.get("months", {})))

    def months(self) -> list[str]:
        return sorted((self.index or {}).get("months", {}))

    def items(self, pk: str, month: str) -> list[dict[str, Any]]:
        """Every item of a market in a month (none when the market has no file there)."""
        if (pk, month) not in self._files:
            data = self._get(ak.lookup_key(month, pk))
            try:
                found = json.loads(gzip.decompress(data))["items"] if data else []
            except (OSError, ValueError, KeyError) as exc:
                raise ArchiveReadError(f"s3://{self.bucket}/{ak.lookup_key(month, pk)} is not a lookup file") from exc
            with self._lock:
                self._files[(pk, month)] = found
        return self._files[(pk, month)]

    def points(self, pk: str, lo: str, hi: str) -> list[dict[str, Any]]:
        """Point items with lo <= sk <= hi (as `Query sk BETWEEN lo AND hi`), ascending; `lo` None: from the
        first archived month."""
        months = self.months()
        first = lo[:7] if lo else (months[0] if months else hi[:7])
        found = []
        for month in ak.months_between(first, hi[:7]):
            found += [i for i in self.items(pk, month)
                      if (lo is None or i["sk"]["S"] >= lo) and i["sk"]["S"] <= hi
                      and not i["sk"]["S"].startswith(keys.CHECKPOINT_PREFIX)]  # fmt: skip
        return found

    def newest_checkpoint(self, pk: str, before: str) -> dict[str, Any] | None:
        """The checkpoint with the greatest `AsOf` <= `before` (a `Time`), looking back month by month. It stops at
        a month without a file for the market: every daily checkpoint holds every market seen since the history
        began, so a market absent from a month was not seen before it either."""
        months = self.months()
        month = before[:7]
        while months and month >= months[0]:
            items = self.items(pk, month)
            if not items:
                return None
            found = [i for i in items if i["sk"]["S"].startswith(keys.CHECKPOINT_PREFIX)
                     and i["sk"]["S"] <= keys.checkpoint_sort_key(before)]  # fmt: skip
            if found:
                return max(found, key=lambda i: i["sk"]["S"])
            month = ak.previous_month(month)
        return None

