"""The chain of committed merge states: which partition each merge continued, and which states may be handed on.

A partition's state is *committed* once its changes are durable in DynamoDB: the history load writes the
partition's manifest last, with user metadata `complete: true` and `continues: <the partition whose state the merge
continued>` (docs/design.md "Continuity"). Only committed states are handed to later partitions, so a run killed
between the merge and the DynamoDB load never lets the next partition go on as if its changes were stored; the next
partition continues the newest committed state instead, and reports the partitions in between as a gap.

States and manifests are read from this environment's write bucket only: `test` must never continue production's
history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from spotlake_assets.core import layout, names
from spotlake_assets.core.timekeys import PARTITION_FMT, previous_partition_key

from .s3 import S3Store

COMPLETE = "complete"
CONTINUES = "continues"
MONTHS_LOOKED_BACK = 25  # Dagster's advised 100,000 partitions are about two years of 10-minute ones


@dataclass(frozen=True)
class Commit:
    partition: str
    continues: str | None  # the committed partition whose state this one's merge continued; None: history began


def _month(key: str) -> str:
    return key[:7]  # YYYY-MM of a partition key or of a state key's partition part


def _months_back(start: str, count: int) -> list[str]:
    year, month = int(start[:4]), int(start[5:7])
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out


@dataclass(frozen=True)
class StateChain:
    store: S3Store

    def commit_of(self, partition_key: str) -> Commit | None:
        """The partition's commit, or None while its history is not durable (or it never ran). A manifest written
        before commits carried metadata (a bare list of keys, written after the points) counts as committed."""
        head = self.store.head(layout.history_manifest_key(partition_key))
        if head is None:
            return None
        metadata = head.get("Metadata", {})
        if COMPLETE not in metadata:
            return Commit(partition_key, None)
        if metadata[COMPLETE] != "true":
            return None
        return Commit(partition_key, metadata.get(CONTINUES) or None)

    def _state_partition(self, key: str) -> str | None:
        """The partition key of a stored state's object key (None for other objects under the prefix)."""
        name = key[len(layout.asset_prefix(names.STATE)) :]
        if not name.endswith(layout.PARQUET):
            return None
        t = datetime.strptime(name.removesuffix(layout.PARQUET), "%Y-%m-%d-%H-%M").replace(tzinfo=UTC)
        return t.strftime(PARTITION_FMT)

    def _stored_states(self, month: str) -> list[str]:
        """Partition keys of the states stored in a month (YYYY-MM), sorted."""
        keys = self.store.iter_keys(layout.asset_prefix(names.STATE) + month, self.store.write_bucket)
        return sorted(p for p in map(self._state_partition, keys) if p is not None)

    def newest_committed_before(self, partition_key: str) -> Commit | None:
        """The newest committed partition before `partition_key` (None: history begins at it). The partition just
        before is tried first; after a gap, states are listed month by month backwards."""
        previous = previous_partition_key(partition_key)
        commit = self.commit_of(previous)
        if commit is not None:
            return commit
        for month in _months_back(_month(previous), MONTHS_LOOKED_BACK):
            for key in reversed(self._stored_states(month)):
                if key < previous and (commit := self.commit_of(key)) is not None:
                    return commit
        return None

    def recovered_before(self, partition_key: str) -> list[str]:
        """The partitions the merge of `partition_key`'s run recovered before it (docs/design.md "Continuity",
        rule 4), oldest first, from its stored state's metadata (one HEAD); [] when it recovered none."""
        head = self.store.head(layout.frame_key(names.STATE, partition_key))
        listed = (head or {}).get("Metadata", {}).get(layout.STATE_RECOVERED_META, "")
        return [key for key in listed.split(",") if key]

    def first_committed_after(self, partition_key: str) -> Commit | None:
        """The oldest committed partition after `partition_key` (None: there is none). Usually one listing that
        finds nothing: the newest partition has none after it."""
        start = layout.frame_key(names.STATE, partition_key)
        for key in self.store.iter_keys(layout.asset_prefix(names.STATE), self.store.write_bucket, start_after=start):
            partition = self._state_partition(key)
            if partition is not None and (commit := self.commit_of(partition)) is not None:
                return commit
        return None

    def newest_committed_from(self, partition_key: str) -> Commit | None:
        """The newest committed partition at or after `partition_key` (None: there is none). One listing from it on,
        then a HEAD per stored state, newest first, until a committed one."""
        start = layout.frame_key(names.STATE, previous_partition_key(partition_key))
        keys = self.store.iter_keys(layout.asset_prefix(names.STATE), self.store.write_bucket, start_after=start)
        for partition in sorted(filter(None, map(self._state_partition, keys)), reverse=True):
            if partition >= partition_key and (commit := self.commit_of(partition)) is not None:
                return commit
        return None
