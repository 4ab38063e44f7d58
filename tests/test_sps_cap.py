"""`test` cannot spend production's SPS quota beyond its cap.

`test` uses production's subscriptions with a rotation state of its own, and Azure counts both environments' calls
against the same quota, so each run of `test` makes at most SPOTLAKE_SPS_MAX_CALLS_PER_RUN calls (10 unless set;
0: none), discovery included. Counted by the Azure emulator."""

from __future__ import annotations

import dagster as dg

from resources.clock import Clock
from resources.settings import load_settings
from spotlake_assets.core.timekeys import data_time
from spotlake_assets.defs import azure_resource, build_resources

from .stack import FAST_AZURE, check_evaluations, graph, materialize_only, metadata, run_assets, start, use_stack

DAY = "2026-11-26"
FIRST = f"{DAY}-00:00"


def collect_sps(stack, monkeypatch, partition: str, cap: str | None):
    """azure_sps_raw for `partition` with the environment's resources, the cap set to `cap` (None: the default)."""
    use_stack(stack, monkeypatch)
    if cap is None:
        monkeypatch.delenv("SPOTLAKE_SPS_MAX_CALLS_PER_RUN", raising=False)
    else:
        monkeypatch.setenv("SPOTLAKE_SPS_MAX_CALLS_PER_RUN", cap)
    settings = load_settings()
    now = data_time(partition)
    stack.emulator.set_time(now)
    resources = {
        **build_resources(settings),
        "azure": azure_resource(settings, max_tries=3, **FAST_AZURE),
        "clock": Clock(frozen_at=now.isoformat()),
    }
    with dg.DagsterInstance.ephemeral() as instance:
        return materialize_only(graph("azure_sps_raw"), resources, instance, partition_key=partition)


def sps_requests(stack) -> int:
    return stack.emulator.stats()["requests"].get("sps", 0)


def test_test_makes_at_most_its_cap_of_sps_calls(monkeypatch):
    with start(env_name="test") as stack:
        assert run_assets(stack, monkeypatch, graph("azure_price_raw"), FIRST, data_time(FIRST)).success
        assert run_assets(stack, monkeypatch, graph("azure_sps_request_pool"), DAY, data_time(FIRST)).success

        # a cap smaller than the pool needs: a fresh state, so the URL locations are asked once, and counted
        before = sps_requests(stack)
        result = collect_sps(stack, monkeypatch, f"{DAY}-10:00", cap="3")
        meta = metadata(result, "azure_sps_raw")
        assert meta["call_cap"] == 3 and meta["call_cap_reached"]
        assert meta["discovery_calls"] == 1 and meta["calls"] == 2
        assert sps_requests(stack) - before == 3
        assert meta["skipped_requests"] > 0 and meta["coverage"] < 1.0
        assert check_evaluations(result)[("azure_sps_raw", "collected")].passed  # what it got is kept

        # the default cap of `test`, 10 calls (the small emulator's pool needs fewer)
        before = sps_requests(stack)
        result = collect_sps(stack, monkeypatch, f"{DAY}-10:10", cap=None)
        meta = metadata(result, "azure_sps_raw")
        assert meta["call_cap"] == 10 and meta["discovery_calls"] == 0
        assert sps_requests(stack) - before == meta["calls"] <= 10

        # 0: no SPS call at all; the source then reports no rows
        before = sps_requests(stack)
        result = collect_sps(stack, monkeypatch, f"{DAY}-10:20", cap="0")
        meta = metadata(result, "azure_sps_raw")
        assert sps_requests(stack) == before
        assert meta["calls"] == meta["discovery_calls"] == 0 and meta["call_cap_reached"]
        assert not check_evaluations(result)[("azure_sps_raw", "collected")].passed


def test_prod_and_local_have_no_cap(monkeypatch):
    with start() as stack:
        assert run_assets(stack, monkeypatch, graph("azure_price_raw"), FIRST, data_time(FIRST)).success
        assert run_assets(stack, monkeypatch, graph("azure_sps_request_pool"), DAY, data_time(FIRST)).success
        result = collect_sps(stack, monkeypatch, f"{DAY}-10:00", cap=None)
        meta = metadata(result, "azure_sps_raw")
        assert meta["call_cap"] == "none" and not meta["call_cap_reached"]
        assert meta["calls"] > 3 and meta["coverage"] == 1.0
    assert load_settings({"SPOTLAKE_ENV": "prod"}).sps_max_calls_per_run is None
