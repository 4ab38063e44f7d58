"""Unattended for a year: a lost, late or killed partition, or two runs at once, leave the archive exact.

Each scenario is compared with an uninterrupted run of the same partitions on a stack with the same seed and clock
(the emulator answers the same for the same time), object by object and item by item; kills are real SIGKILLs of a
run worker process (spotlake_assets/local/worker.py), followed by the retry an operator's instance makes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from dagster import DagsterInstance

from resources.continuity import StateChain
from resources.public_files import PublicFiles
from spotlake_assets.core import layout, names
from spotlake_assets.core.timekeys import data_time
from spotlake_assets.core.transforms.state import state_from_frame
from spotlake_assets.local.run import run_partitions, run_range

from .stack import (
    assert_history_is_change_only,
    bucket_state,
    failure_messages,
    graph,
    kill_when,
    load_frame,
    run_assets,
    s3_client,
    spawn_worker,
    start,
    table_items,
    use_stack,
)

SEED = 21
P0, P1, P2 = "2026-11-26-10:00", "2026-11-26-10:10", "2026-11-26-10:20"
# The SPS rotation state records every reserved call, which a retry repeats: it is not part of the archive.
NOT_ARCHIVE = {layout.ROTATION_STATE_KEY}


def archive(stack) -> dict[str, str]:
    """Every S3 object of the write bucket (digests) and every DynamoDB item: what a fault must not change."""
    s3, bucket = s3_client(stack), stack.settings.write_bucket
    objects = {
        key: hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
        for key in bucket_state(stack, bucket)
        if key not in NOT_ARCHIVE
    }
    items = {f"{i['pk']['S']}|{i['sk']['S']}": json.dumps(i, sort_keys=True) for i in table_items(stack)}
    return {**{f"s3:{k}": v for k, v in objects.items()}, **{f"ddb:{k}": v for k, v in items.items()}}


def differences(now: dict, reference: dict) -> list[str]:
    keys = sorted(set(now) | set(reference))
    return [k for k in keys if now.get(k) != reference.get(k)]


def state_series(stack, partition: str):
    store = use_stack_store(stack)
    return state_from_frame(load_frame(store, names.STATE, partition)).series


def use_stack_store(stack):
    from spotlake_assets.defs import build_resources

    return build_resources(stack.settings)["store"]


@pytest.fixture(scope="module")
def uninterrupted():
    """P0, P1, P2 run one after the other at their data times."""
    with start(seed=SEED) as stack, pytest.MonkeyPatch.context() as monkeypatch:
        use_stack(stack, monkeypatch)
        report = run_partitions(stack, [P0, P1, P2])
        assert report.success, report.failures
        assert all(p.failed_checks == [] for p in report.partitions)
        yield archive(stack)


def test_a_partition_whose_run_died_after_collecting_is_recovered_by_the_next_run(uninterrupted, monkeypatch):
    """P1's raw snapshots were collected, then its run died (or was ended by its bound) before the merge, and no
    retry came before P2: P2's run merges, loads and publishes P1 first, so the archive is the uninterrupted one,
    and a late retry of P1 changes nothing."""
    with start(seed=SEED) as stack:
        use_stack(stack, monkeypatch)
        assert run_partitions(stack, [P0]).success
        raw = graph(names.PRICE_RAW, names.EVICTION_RAW, names.SPS_RAW)
        assert run_assets(stack, monkeypatch, raw, P1, data_time(P1)).success

        report = run_partitions(stack, [P2])
        assert report.success, report.failures
        [summary] = report.partitions
        assert summary.failed_checks == [] and summary.lost_partitions == []
        assert StateChain(use_stack_store(stack)).commit_of(P2).continues == P1
        assert differences(archive(stack), uninterrupted) == []

        # the killed run's retry, after P2: P1 is merged again onto the same state, nothing changes
        late = graph(*names.TEN_MINUTE_ASSETS)
        assert run_assets(stack, monkeypatch, late, P1, data_time(P2) + timedelta(minutes=5)).success
        assert differences(archive(stack), uninterrupted) == []


def test_a_lost_partition_is_a_visible_gap_and_a_range_fills_it_once_its_snapshots_exist(uninterrupted, monkeypatch):
    """Nothing of P1 was stored when P2 ran: P2 continues P0 and names P1 lost. When P1's snapshots appear later (an
    import), one run over the range from P1 to the newest partition gives the uninterrupted archive."""
    with start(seed=SEED) as stack:
        use_stack(stack, monkeypatch)
        assert run_partitions(stack, [P0]).success
        raw = graph(names.PRICE_RAW, names.EVICTION_RAW, names.SPS_RAW)
        assert run_assets(stack, monkeypatch, raw, P1, data_time(P1)).success
        s3, bucket = s3_client(stack), stack.settings.write_bucket
        kept = {}  # P1's snapshots, held aside while P2 runs
        for asset in (names.PRICE_RAW, names.EVICTION_RAW, names.SPS_RAW):
            key = layout.frame_key(asset, P1)
            kept[key] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            s3.delete_object(Bucket=bucket, Key=key)

        report = run_partitions(stack, [P2])
        assert report.success, report.failures
        [summary] = report.partitions
        assert summary.failed_checks == ["azure_spot_snapshot / continuity"]
        assert summary.lost_partitions == [P1]
        assert summary.changes_written > 0
        assert_history_is_change_only(stack, state_series(stack, P2))

        for key, body in kept.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        with DagsterInstance.ephemeral() as instance:
            result = run_range(stack, [P1, P2], data_time(P2) + timedelta(hours=1), instance)
        assert result.success
        assert differences(archive(stack), uninterrupted) == []


def test_a_late_partition_is_lost_and_the_next_one_goes_on(monkeypatch):
    """A run that starts more than 10 minutes late finds nothing stored: its raw steps refuse it (the run fails,
    "can no longer be collected"), nothing is stored, merged or published for it, and the next partition continues
    the one before and names it lost."""
    with start(seed=SEED) as stack:
        use_stack(stack, monkeypatch)
        assert run_partitions(stack, [P0]).success
        before = bucket_state(stack, stack.settings.write_bucket)
        late = graph(*names.TEN_MINUTE_ASSETS)
        result = run_assets(stack, monkeypatch, late, P1, data_time(P1) + timedelta(minutes=30))
        assert not result.success
        assert all(f"partition {P1} can no longer be collected" in f for f in failure_messages(result))
        assert bucket_state(stack, stack.settings.write_bucket) == before
        store = use_stack_store(stack)
        assert store.get(layout.frame_key(names.STATE, P1)) is None
        assert store.get(layout.public_csv_key(P1)) is None

        report = run_partitions(stack, [P2])
        assert report.success
        assert report.partitions[0].lost_partitions == [P1]
        assert_history_is_change_only(stack, state_series(stack, P2))


def test_a_run_killed_at_each_write_stage_then_retried_gives_the_uninterrupted_archive(
    uninterrupted, monkeypatch, tmp_path
):
    """P1's run is SIGKILLed while it writes its raw snapshots; its retry is killed in the merge, the next retry in
    the DynamoDB load, the next while it publishes; the last retry completes. The archive equals the uninterrupted
    one, as if nothing had happened."""
    with start(seed=SEED) as stack:
        use_stack(stack, monkeypatch)
        assert run_partitions(stack, [P0]).success
        store = use_stack_store(stack)
        stack.emulator.set_time(data_time(P1))
        stages = {
            "raw snapshot": lambda: store.get(layout.frame_key(names.PRICE_RAW, P1)) is not None,
            "merge": lambda: store.get(layout.frame_key(names.STATE, P1)) is not None,
            "DynamoDB load": lambda: store.get(layout.history_manifest_key(P1)) is not None,
            "public files": lambda: store.get(layout.public_csv_key(P1)) is not None,
        }
        for stage, reached in stages.items():
            worker = spawn_worker(stack, tmp_path, P1, data_time(P1))
            assert kill_when(worker, reached), f"the run ended before its {stage} stage: {worker.stderr.read()}"
        retry = spawn_worker(stack, tmp_path, P1, data_time(P1))
        assert retry.wait(timeout=300) == 0, retry.stderr.read()
        assert run_partitions(stack, [P2]).success
        assert differences(archive(stack), uninterrupted) == []


def test_two_runs_at_once_merge_in_order(monkeypatch, tmp_path):
    """P1 and P2 started together (both live at P2's data time): the second merge waits for the first run to commit
    P1, then continues it; nothing is lost and the history stays change-only."""
    with start(seed=SEED) as stack:
        use_stack(stack, monkeypatch)
        assert run_partitions(stack, [P0]).success
        at = data_time(P2)
        stack.emulator.set_time(at)
        runs = [spawn_worker(stack, tmp_path, key, at) for key in (P1, P2)]
        for run in runs:
            assert run.wait(timeout=600) == 0, run.stderr.read()
        store = use_stack_store(stack)
        chain = StateChain(store)
        assert [chain.commit_of(P1).continues, chain.commit_of(P2).continues] == [P0, P1]
        assert_history_is_change_only(stack, state_series(stack, P2))


def test_the_latest_file_never_rolls_back_nor_shrinks(monkeypatch):
    with start(seed=SEED) as stack:
        use_stack(stack, monkeypatch)
        assert run_partitions(stack, [P0, P1]).success
        store = use_stack_store(stack)
        files = PublicFiles(store)
        head = store.head(layout.LATEST_JSON_KEY)
        assert head["Metadata"]["data-time"] == "2026-11-26 10:20:00"
        newest = store.get(layout.LATEST_JSON_KEY)

        # an older partition published again (a backfill, a late retry) leaves the newer file
        older = state_from_frame(load_frame(store, names.STATE, P0))
        assert files.publish_latest(P0, older).reason == "newer published"
        assert store.get(layout.LATEST_JSON_KEY) == newest

        # a much smaller table (a partial answer) is refused, and the asset's check says so
        state = state_from_frame(load_frame(store, names.STATE, P1))
        shrunk = type(state)(series=state.series.head(3), workloads=state.workloads, markets=state.markets.head(1))
        outcome = files.publish_latest(P1, shrunk)
        assert outcome.refused and "refused" in outcome.reason
        assert store.get(layout.LATEST_JSON_KEY) == newest

        # many writers at once, old and new: the newest data time wins, whatever the order
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda k: PublicFiles(use_stack_store(stack)).publish_latest(*k),
                          [(P0, older), (P1, state)] * 8))  # fmt: skip
        assert store.head(layout.LATEST_JSON_KEY)["Metadata"]["data-time"] == "2026-11-26 10:20:00"
        assert store.get(layout.LATEST_JSON_KEY) == newest


def test_recovery_looks_at_the_newest_uncommitted_partitions_this_environment_collected(make_store, s3_admin, buckets):
    """Only partitions with raw snapshots (or failure markers) in the write bucket, at most RECOVERY_LOOKBACK of the
    gap's newest: what `test` can read of production is not its own collection."""
    from resources.io_manager import PartitionStore
    from spotlake_assets.core.timekeys import partitions_ending_at
    from spotlake_assets.dataset.snapshot import RECOVERY_LOOKBACK, recoverable

    gap = partitions_ending_at("2026-11-26-12:00", RECOVERY_LOOKBACK + 3)
    collected = {gap[0]: names.PRICE_RAW, gap[-2]: names.SPS_RAW, gap[-1]: names.EVICTION_RAW}
    for key, asset in collected.items():
        s3_admin.put_object(Bucket=buckets.write, Key=layout.frame_key(asset, key), Body=b"x")
    s3_admin.put_object(Bucket=buckets.write, Key=layout.failure_marker_key(names.PRICE_RAW, gap[-4]), Body=b"{}")
    s3_admin.put_object(Bucket=buckets.read, Key=layout.frame_key(names.PRICE_RAW, gap[-3]), Body=b"x")
    assert recoverable(PartitionStore(make_store()), gap) == [gap[-4], gap[-2], gap[-1]]
