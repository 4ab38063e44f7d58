"""The continuity protocol: which merge state a partition continues, when it is committed, and what is refused.

The rules (docs/design.md "Continuity: a year unattended", numbered as there), each written once, here:

- **Commit** (rule 1): a partition's state is *committed* once its changes are durable in DynamoDB. The history load
  (resources/history_table.py, `HistoryTable.load_partition`) writes the partition's `Manifest` first as an intent
  (every key an earlier run wrote and every key this one will write, user metadata `complete: false`), then its
  items, then deletes what the earlier run wrote and this one does not, then the manifest again, `complete: true`
  and `continues: <the partition whose state its merge continued>`. A kill at any point leaves it uncommitted.
- **The chain** (rule 2): `StateChain` reads the commits: the newest committed partition before P is the state P's
  merge continues; the partitions in between are lost (the merge's `continuity` check names them).
- **Out of order** (rule 4, "Filling a gap"): `refuse_out_of_order`: no run may merge or commit a partition that a
  later committed partition already continued without, unless it goes on to the newest partition.
- **Stale** (rule 5): `check_still_continuous`: a partition whose merge continued a state that is no longer the
  newest committed one before it (another run committed in between) is refused at commit; its retry merges it again.
- **The gap** (rule 5): `newest_committed_settled`: a merge whose gap (the partitions between the newest committed
  state and its first partition) another run is still materializing waits for that run, for a bounded time.

Refusals raise `ContinuityError`; the assets turn it into a Dagster Failure with the same text. States and manifests
are read from this environment's write bucket only: `test` must never continue production's history. The recovery of
partitions whose run died (rule 4) is the merge's (spotlake_assets/dataset/snapshot.py, `recoverable`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from spotlake_assets.core import layout, names
from spotlake_assets.core.timekeys import PARTITION_FMT, previous_partition_key

from .s3 import S3Store

COMPLETE = "complete"
CONTINUES = "continues"
MONTHS_LOOKED_BACK = 25  # Dagster's advised 100,000 partitions are about two years of 10-minute ones
# Runs that may still write a partition's state or commit it.
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]

Keys = Iterable[tuple[str, str]]  # (pk, sk) of DynamoDB items


class ContinuityError(RuntimeError):
    """A partition may not be merged or committed now (the message says why and what to do)."""


@dataclass(frozen=True)
class Commit:
    partition: str
    continues: str | None  # the committed partition whose state this one's merge continued; None: history began


@dataclass(frozen=True)
class Manifest:
    """A partition's manifest: the (pk, sk) of its history items, whose metadata is its commit (rule 1)."""

    store: S3Store
    partition_key: str

    @property
    def key(self) -> str:
        return layout.history_manifest_key(self.partition_key)

    def earlier_keys(self) -> set[tuple[str, str]]:
        """The keys an earlier run of the partition listed (written, or about to be): a re-run deletes those it
        does not write again."""
        previous = self.store.get_from(self.store.write_bucket, self.key)
        return {tuple(k) for k in json.loads(previous)} if previous else set()

    def write_intent(self, keys: Keys, continues: str | None) -> None:
        """Before any item is written: every key of the earlier run and of this one, the partition uncommitted."""
        self._write(keys, complete=False, continues=continues)

    def write_commit(self, keys: Keys, continues: str | None) -> None:
        """Last: the keys of this run, the partition committed, continuing `continues`."""
        self._write(keys, complete=True, continues=continues)

    def _write(self, keys: Keys, *, complete: bool, continues: str | None) -> None:
        metadata = {COMPLETE: "true" if complete else "false", CONTINUES: continues or ""}
        body = json.dumps(sorted(map(list, keys))).encode()
        self.store.put(self.key, body, content_type="application/json", metadata=metadata)

    def commit(self) -> Commit | None:
        """The partition's commit, or None while its history is not durable (or it never ran). A manifest written
        before commits carried metadata (a bare list of keys, written after the points) counts as committed."""
        head = self.store.head(self.key)
        if head is None:
            return None
        metadata = head.get("Metadata", {})
        if COMPLETE not in metadata:
            return Commit(self.partition_key, None)
        if metadata[COMPLETE] != "true":
            return None
        return Commit(self.partition_key, metadata.get(CONTINUES) or None)


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
    """The chain of committed merge states: which partition each merge continued, and which states may be handed on.
    Only committed states are handed to later partitions, so a run killed between the merge and the DynamoDB load
    never lets the next partition go on as if its changes were stored; the next partition continues the newest
    committed state instead, and reports the partitions in between as a gap."""

    store: S3Store

    def commit_of(self, partition_key: str) -> Commit | None:
        """The partition's commit (Manifest.commit), or None while it is not committed."""
        return Manifest(self.store, partition_key).commit()

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


def refuse_out_of_order(chain: StateChain, last: str, first: str | None = None) -> None:
    """Refuse a run ending at `last` when a later, committed partition already continued without it: its changes
    would be stored beside the later ones computed without them. Only the range up to the newest partition fills such
    a gap exactly. `first`: the partition the instruction names (the merge, before it merges anything, names the
    first partition of its run; the history load the partition it is about to commit)."""
    later = chain.first_committed_after(last)
    if later is None or later.continues == last:
        return
    fill = (
        f"the range {first} .. the newest partition in one run"
        if first
        else "the range from the first partition of this run to the newest partition in one run (a backfill)"
    )
    raise ContinuityError(
        f"partition {later.partition} already continued the state of {later.continues or 'nothing'} without "
        f"{last}: materialize {fill} to fill the gap exactly"
    )


def check_still_continuous(chain: StateChain, partition_key: str, continues: str | None, run_last: str) -> None:
    """Refuse to commit a partition whose changes no longer match the stored history: another run committed a
    partition between the one it continued and itself (its changes would repeat that one's: a retry recomputes
    them), or a partition after this run's range already continued without it (refuse_out_of_order). Later
    partitions of this run's own range are re-committed after it."""
    newest_before = chain.newest_committed_before(partition_key)
    if (newest_before.partition if newest_before else None) != continues:
        raise ContinuityError(
            f"partition {partition_key} was merged onto the state of {continues or 'nothing (history began)'}, "
            f"but {newest_before.partition} has been committed since: its changes are stale; a retry merges it again"
        )
    refuse_out_of_order(chain, run_last, partition_key)


def _partitions_of(run: dg.DagsterRun) -> tuple[str, str] | None:
    """(first, last) partition a run materializes, from its tags; None when it has none."""
    tags = run.tags
    if "dagster/partition" in tags:
        return tags["dagster/partition"], tags["dagster/partition"]
    if "dagster/asset_partition_range_start" in tags:
        return tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]
    return None


def runs_in_gap(instance: dg.DagsterInstance, run_id: str, committed: str | None, first: str) -> list[str]:
    """Other in-progress runs (than `run_id`) that materialize a partition after `committed` and before `first`."""
    busy = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        span = _partitions_of(run)
        if run.run_id == run_id or span is None:
            continue
        if span[0] < first and (committed is None or span[1] > committed):
            busy.append(f"run {run.run_id[:8]} ({span[0]}..{span[1]})")
    return busy


def newest_committed_settled(
    chain: StateChain,
    instance: dg.DagsterInstance,
    run_id: str,
    first: str,
    *,
    wait_seconds: float,
    poll_seconds: float,
    log: Callable[[str], None],
) -> Commit | None:
    """The newest committed partition before `first` once no other run materializes a partition of the gap after it
    (waiting at most `wait_seconds`, so two runs at once still merge in order); None: the history begins at `first`.
    Raises ContinuityError when the gap is still busy after the wait."""
    deadline = time.monotonic() + wait_seconds
    while True:
        commit = chain.newest_committed_before(first)
        busy = runs_in_gap(instance, run_id, commit.partition if commit else None, first)
        if not busy:
            return commit
        if time.monotonic() > deadline:
            raise ContinuityError(
                f"partition {first} cannot be merged yet: {', '.join(busy)} still materialize(s) partitions "
                f"before it after {wait_seconds:.0f} s; retry when they are done"
            )
        log(f"waiting for {', '.join(busy)} to commit the partitions before {first}")
        time.sleep(poll_seconds)
