"""SPS collection end to end on the local stack: the request pool, quota rotation across partitions and
concurrent runs, learned invalid lists, faults, partial coverage, credentials kept out of logs."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

import pandas as pd
import pytest
from dagster import DagsterInstance

from spotlake_assets.core.layout import ROTATION_STATE_KEY as STATE_KEY
from spotlake_assets.core.sps.answers import COLUMNS
from spotlake_assets.core.sps.rotation import CALLS_PER_WINDOW, RotationState, pair_order
from spotlake_assets.core.timekeys import data_time, desired_count
from spotlake_assets.defs import build_resources

from .stack import check_evaluations, graph, load_frame, metadata, run_assets, start

[azure_price_raw] = graph("azure_price_raw")
azure_sps_request_pool, azure_sps_raw = graph("azure_sps_request_pool", "azure_sps_raw")

DAY = "2026-11-26"
FIRST = f"{DAY}-00:00"  # the day's first partition: its price snapshot makes the day's pool
P1 = f"{DAY}-10:00"


def prepare_pool(stack, monkeypatch, day: str = DAY):
    first = f"{day}-00:00"
    assert run_assets(stack, monkeypatch, [azure_price_raw], first, data_time(first)).success
    result = run_assets(stack, monkeypatch, [azure_sps_request_pool], day, data_time(first))
    assert result.success
    return metadata(result, "azure_sps_request_pool")


def collect_sps(stack, monkeypatch, partition: str, **kw):
    return run_assets(stack, monkeypatch, [azure_sps_raw], partition, data_time(partition), **kw)


def stored_state(stack) -> RotationState:
    data = build_resources(stack.settings)["store"].get(STATE_KEY)
    return RotationState.from_json(json.loads(data))


def sps_rows(stack, partition: str) -> pd.DataFrame:
    return load_frame(build_resources(stack.settings)["store"], "azure_sps_raw", partition)


def pool_of(stack, day: str = DAY) -> pd.DataFrame:
    return load_frame(build_resources(stack.settings)["store"], "azure_sps_request_pool", day)


def check_result(result, name: str = "sps_coverage"):
    return check_evaluations(result)[("azure_sps_raw", name)]


@pytest.fixture
def stack():
    with start() as s:
        yield s


def test_one_partition_covers_every_pool_pair(stack, monkeypatch):
    pool_meta = prepare_pool(stack, monkeypatch)
    assert pool_meta["requests"] <= pool_meta["baseline_requests"]
    result = collect_sps(stack, monkeypatch, P1)
    assert result.success
    meta = metadata(result, "azure_sps_raw")
    rows = sps_rows(stack, P1)
    assert list(rows.columns) == list(COLUMNS)
    assert meta["coverage"] == 1.0 and meta["skipped_requests"] == 0
    assert meta["desired_count"] == desired_count(P1) == 30
    assert set(rows["DesiredCount"]) == {30}
    assert set(rows["Score"]) <= {-1, 1, 2, 3}
    assert set(rows["AvailabilityZone"]) <= {"1", "2", "3", "Single"}
    assert (rows["T3"] == rows["Score"].eq(3) * 30).all() and (rows["T2"] == rows["Score"].ge(2) * 30).all()
    assert not rows.duplicated(["DesiredCount", "RegionCodeSPS", "InstanceTypeSPS", "AvailabilityZone"]).any()
    pool = pool_of(stack)
    assert set(zip(rows["RegionCodeSPS"], rows["InstanceTypeSPS"], strict=True)) == set(
        zip(pool["RegionCodeSPS"], pool["InstanceTypeSPS"], strict=True)
    )
    assert meta["calls"] >= meta["requests_planned"] and meta["pairs_used"] > 1
    assert check_result(result).passed


def test_rotation_continues_and_never_exceeds_the_pair_limit(stack, monkeypatch):
    prepare_pool(stack, monkeypatch)
    subs = stack.emulator.credentials["subscriptions"]
    start_key = data_time(P1)
    last_pairs = []
    for i in range(9):  # 90 minutes of partitions: more than one 62-minute window
        key = (start_key + timedelta(minutes=10 * i) - timedelta(minutes=10)).strftime("%Y-%m-%d-%H:%M")
        before = stored_state(stack) if i else None
        assert collect_sps(stack, monkeypatch, key).success
        state = stored_state(stack)
        order = pair_order(subs, state.url_locations)
        if before is not None:
            # the first pair this partition reserved is the one after where the previous partition stopped
            now = data_time(key)
            reserved_now = [p for p, ts in state.history.items() if now in ts]
            first = order[(order.index(before.last_pair) + 1) % len(order)]
            assert first in reserved_now
        last_pairs.append(state.last_pair)
    stats = stack.emulator.stats()
    assert stats["max_calls_in_any_62_minutes"] <= CALLS_PER_WINDOW
    assert stats["throttled"]["sps"] == 0
    assert len(set(last_pairs)) > 1


def test_concurrent_collections_lose_no_update_and_respect_the_limit(stack, monkeypatch):
    prepare_pool(stack, monkeypatch)
    stack.emulator.reset_stats()
    keys = [P1, P1, f"{DAY}-10:10"]
    results = {}

    def run(i, key):
        with DagsterInstance.ephemeral() as instance:
            # all at one moment: the adjacent partition has just closed, P1 closed ten minutes ago
            now = data_time(keys[-1])
            results[i] = run_assets(stack, monkeypatch, [azure_sps_raw], key, now, instance=instance)

    threads = [threading.Thread(target=run, args=(i, k)) for i, k in enumerate(keys)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.success for r in results.values())
    calls = sum(metadata(r, "azure_sps_raw")["calls"] for r in results.values())
    state = stored_state(stack)
    reserved = sum(len(ts) for ts in state.history.values())
    stats = stack.emulator.stats()
    accepted = sum(len(ts) for ts in stats["sps_calls"].values())
    # every call made is in the persisted history (no reservation overwritten by another run) ...
    assert reserved == calls == accepted
    # ... and no pair went past its limit although three runs shared the quota
    assert stats["max_calls_in_any_62_minutes"] <= CALLS_PER_WINDOW
    assert stats["throttled"]["sps"] == 0


def test_faults_give_the_same_rows_as_a_fault_free_run(monkeypatch):
    with start() as clean:
        prepare_pool(clean, monkeypatch)
        assert collect_sps(clean, monkeypatch, P1).success
        expected = sps_rows(clean, P1)
    with start(rate_429=0.2, rate_500=0.05, rate_timeout=0.03, subscriptions=6) as faulty:
        prepare_pool(faulty, monkeypatch)
        result = collect_sps(faulty, monkeypatch, P1)
        assert result.success
        meta = metadata(result, "azure_sps_raw")
        assert meta["retries"] > 0 and meta["coverage"] == 1.0
        pd.testing.assert_frame_equal(sps_rows(faulty, P1), expected)


def test_invalid_regions_and_sizes_are_learned_persisted_and_left_out_of_the_next_pool(monkeypatch):
    with start(invalid_regions=["westus2"], invalid_sizes=["Standard_D2s_v3"]) as stack:
        prepare_pool(stack, monkeypatch)
        assert "westus2" in set(pool_of(stack)["RegionCodeSPS"])
        result = collect_sps(stack, monkeypatch, P1)
        assert result.success
        meta = metadata(result, "azure_sps_raw")
        assert meta["learned_invalid_regions"] == ["westus2"]
        assert meta["learned_invalid_sizes"] == ["Standard_D2s_v3"]
        assert meta["coverage"] == 1.0  # of the valid pairs
        state = stored_state(stack)
        assert "westus2" in state.invalid_regions and "Standard_D2s_v3" in state.invalid_sizes
        rows = sps_rows(stack, P1)
        assert "westus2" not in set(rows["RegionCodeSPS"]) and "Standard_D2s_v3" not in set(rows["InstanceTypeSPS"])

        # the next day's pool (built 14 hours later) leaves them out ...
        prepare_pool(stack, monkeypatch, day="2026-11-27")
        next_pool = pool_of(stack, "2026-11-27")
        assert "westus2" not in set(next_pool["RegionCodeSPS"])
        assert "Standard_D2s_v3" not in set(next_pool["InstanceTypeSPS"])
        # ... the first pool built a day after they were learned asks them again: one 400 is not forever
        prepare_pool(stack, monkeypatch, day="2026-11-28")
        third_pool = pool_of(stack, "2026-11-28")
        assert "westus2" in set(third_pool["RegionCodeSPS"])
        assert "Standard_D2s_v3" in set(third_pool["InstanceTypeSPS"])
        again = "2026-11-28-10:00"
        result = collect_sps(stack, monkeypatch, again)
        assert result.success
        # still invalid at Azure: learned again, with a new day of exclusion
        assert metadata(result, "azure_sps_raw")["learned_invalid_regions"] == ["westus2"]
        assert stored_state(stack).invalid_regions["westus2"] == data_time(again)


def test_too_little_quota_gives_partial_data_and_the_next_partition_resumes(monkeypatch):
    """One (subscription, location) pair that Azure allows 4 calls an hour: the partition keeps what it got,
    parks the pair on its 429, reports the coverage, and a later partition resumes without waiting in a run."""
    with start(subscriptions=1, url_locations=1, sps_calls_per_hour=4) as stack:
        prepare_pool(stack, monkeypatch)
        planned = pool_of(stack)["request_id"].nunique()
        assert planned > 4
        result = collect_sps(stack, monkeypatch, P1)
        assert result.success
        meta = metadata(result, "azure_sps_raw")
        # the batch went out at once: 4 answered, the rest were throttled and parked the pair
        assert meta["throttled"] >= 1 and meta["calls"] == 4 + meta["throttled"]
        assert meta["skipped_requests"] == planned - 4
        assert 0 < meta["coverage"] < 1
        check = check_result(result)
        assert not check.passed and check.metadata["coverage"].value == meta["coverage"]
        pair = (stack.emulator.credentials["subscriptions"][0], stored_state(stack).url_locations[0])
        assert pair in stored_state(stack).parked

        # ten minutes later the pair is parked: nothing is asked, nothing waits
        result = collect_sps(stack, monkeypatch, f"{DAY}-10:10")
        assert result.success
        assert metadata(result, "azure_sps_raw")["calls"] == 0
        assert metadata(result, "azure_sps_raw")["skipped_requests"] == planned
        # after the 62-minute park the rotation resumes
        result = collect_sps(stack, monkeypatch, f"{DAY}-11:10")
        assert result.success
        resumed = metadata(result, "azure_sps_raw")
        assert resumed["calls"] - resumed["throttled"] == 4 and resumed["skipped_requests"] == planned - 4


def test_credentials_come_from_the_token_endpoint_and_never_reach_logs_or_metadata(stack, monkeypatch, caplog):
    """The real ClientSecretCredential gets a token from the emulator's TLS login endpoint (the AzureAuth item
    holds the service principal); the secret appears in no log line and no metadata."""
    secret = stack.emulator.credentials["client_secret"]
    caplog.set_level(logging.DEBUG)
    with DagsterInstance.ephemeral() as instance:
        prepare_pool(stack, monkeypatch)
        result = run_assets(stack, monkeypatch, [azure_sps_raw], P1, data_time(P1), instance=instance)
        assert result.success
        logs = instance.all_logs(result.run_id)
    assert stack.emulator.stats()["requests"].get("token", 0) >= 1
    assert secret not in caplog.text
    assert all(secret not in (e.user_message or "") for e in logs)
    assert secret not in json.dumps(metadata(result, "azure_sps_raw"), default=str)
