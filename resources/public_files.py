"""The public files the SpotLake web site and researchers read (legacy keys, public-read; docs/contract.md
"Stored objects"). The bytes are built by the pure spotlake_assets.core.transforms.outputs; this module stores them."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from spotlake_assets.core import layout
from spotlake_assets.core.timekeys import data_time, format_time
from spotlake_assets.core.transforms.outputs import (
    latest_records,
    merge_association,
    merge_selector,
    snapshot_csv_gz,
)
from spotlake_assets.core.transforms.state import MergeState

from .s3 import S3Store, Version

JSON = "application/json"
# latest_azure.json is not replaced by a file with fewer than this share of its rows: a much smaller table means a
# source answered partly (the web site would lose rows), not that Azure retired half its offers in ten minutes.
MIN_LATEST_SHARE = 0.5
DATA_TIME = "data-time"  # user metadata of latest_azure.json: the data time of the partition it was made from
ROWS = "rows"


@dataclass(frozen=True)
class LatestOutcome:
    published: bool
    reason: str  # "published", "newer published" (a backfill never rolls it back), or why it was refused
    rows: int
    published_rows: int | None  # rows of the file in place before, when known

    @property
    def refused(self) -> bool:
        return not self.published and self.reason != "newer published"


@dataclass(frozen=True)
class PublicFiles:
    store: S3Store

    def publish_csv(self, partition_key: str, rows: pd.DataFrame) -> str:
        """The partition's merged rows as rawdata/azure/YYYY/MM/DD/HH-MM-SS.csv.gz; returns its key."""
        key = layout.public_csv_key(partition_key)
        self.store.put(key, snapshot_csv_gz(rows), content_type="application/gzip", public=True)
        return key

    def add_to_selector(self, rows: pd.DataFrame) -> int:
        """Add the rows' (tier, type, region) to the query selector, which only grows; concurrent runs cannot drop
        each other's additions (a conditional update). Returns how many entries were new."""

        def add(current: Version | None) -> tuple[Version, int]:
            body, added = merge_selector(current.body if current else None, rows)
            return Version(body), added

        return self.store.update(layout.QUERY_SELECTOR_KEY, add, content_type=JSON, public=True)

    def add_to_association(self, rows: pd.DataFrame) -> int:
        """Add the rows' (InstanceType, Region) to the web site's association file (its query form's instance and
        region lists), which only grows, by a conditional update. Returns how many pairs were new."""

        def add(current: Version | None) -> tuple[Version, int]:
            body, added = merge_association(current.body if current else None, rows)
            return Version(body), added

        return self.store.update(layout.ASSOCIATION_KEY, add, content_type=JSON, public=True)

    def publish_latest(self, partition_key: str, state: MergeState) -> LatestOutcome:
        """Replace latest_azure.json with the partition's latest rows, in one conditional write that carries the
        partition's data time in the object's metadata, unless
        - a newer partition published it (a backfill, a late or concurrent run never rolls it back), or
        - the new table is empty or has fewer than half the rows of the one in place (refused: a partial answer).
        This environment's own file decides; one written before the data time was kept in metadata falls back to the
        legacy marker object."""
        time = format_time(data_time(partition_key))
        body, rows = latest_records(state)

        def replace(current: Version | None) -> tuple[Version | None, LatestOutcome]:
            before = None if current is None else len(json.loads(current.body))
            published_time = None
            if current is not None:
                published_time = current.metadata.get(DATA_TIME) or self._legacy_marker_time()
            if published_time is not None and published_time > time:
                return None, LatestOutcome(False, "newer published", rows, before)
            if rows == 0 or (before and rows < before * MIN_LATEST_SHARE):
                reason = f"refused: {rows} rows would replace {before}" if before else "refused: no rows"
                return None, LatestOutcome(False, reason, rows, before)
            return Version(body, {DATA_TIME: time, ROWS: str(rows)}), LatestOutcome(True, "published", rows, before)

        return self.store.update(
            layout.LATEST_JSON_KEY, replace, content_type=JSON, public=True, first_from_read_bucket=False
        )

    def _legacy_marker_time(self) -> str | None:
        """The data time an earlier version of this collector kept in a separate marker object."""
        marker = self.store.get_from(self.store.write_bucket, layout.LATEST_MARKER_KEY)
        return None if marker is None else json.loads(marker).get("data_time")
