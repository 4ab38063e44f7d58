"""The public files the SpotLake web site and researchers read (legacy keys, public-read; docs/contract.md
"Public files"). The bytes are built by the pure spotlake_assets.core.transforms.outputs; this module stores them."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from spotlake_assets.core import layout
from spotlake_assets.core.timekeys import data_time, format_time
from spotlake_assets.core.transforms.outputs import latest_json, merge_association, merge_selector, snapshot_csv_gz
from spotlake_assets.core.transforms.state import MergeState

from .s3 import S3Store

JSON = "application/json"


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

        def add(existing: bytes | None) -> tuple[bytes, int]:
            return merge_selector(existing, rows)

        return self.store.update(layout.QUERY_SELECTOR_KEY, add, content_type=JSON, public=True)

    def add_to_association(self, rows: pd.DataFrame) -> int:
        """Add the rows' (InstanceType, Region) to the web site's association file (its query form's instance and
        region lists), which only grows, by a conditional update. Returns how many pairs were new."""

        def add(existing: bytes | None) -> tuple[bytes, int]:
            return merge_association(existing, rows)

        return self.store.update(layout.ASSOCIATION_KEY, add, content_type=JSON, public=True)

    def publish_latest(self, partition_key: str, state: MergeState) -> bool:
        """Publish latest_azure.json from the partition's state unless a newer partition has published it (a
        backfill must not roll it back; this environment's own marker decides). Returns whether it was written."""
        time = format_time(data_time(partition_key))
        marker = self.store.get_from(self.store.write_bucket, layout.LATEST_MARKER_KEY)
        if marker is not None and json.loads(marker)["data_time"] > time:
            return False
        self.store.put(layout.LATEST_JSON_KEY, latest_json(state), content_type=JSON, public=True)
        self.store.put(layout.LATEST_MARKER_KEY, json.dumps({"data_time": time}).encode(), content_type=JSON)
        return True
