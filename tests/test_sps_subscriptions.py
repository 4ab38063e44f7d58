"""SPS as Azure documents it, beyond what the emulator used to show: a subscription without the "Compute
Recommendations Role" (403 on every call), throttling that counts against the whole subscription (429 with
Retry-After), and non-public names in Azure's list of supported locations. The real collector, client and S3 state
store against the emulator and moto's server over HTTP; rows are compared with a fault-free collection."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest

from resources.sps_collector import SpsCollector, SpsRun
from resources.sps_state import SpsStateStore
from spotlake_assets.core.layout import ROTATION_STATE_KEY as STATE_KEY
from spotlake_assets.core.sps.answers import score_rows
from spotlake_assets.core.sps.packing import Request
from spotlake_assets.core.sps.rotation import RotationState
from spotlake_assets.core.timekeys import data_time
from spotlake_assets.defs import azure_resource

from .stack import FAST_AZURE, start, use_stack

T = data_time("2026-11-26-10:00")
DAY = timedelta(days=1)
MISSING_ROLE, THROTTLED = "missing_role", "throttled"  # the reasons stored with a parked subscription
# drift_rate=0: the scores stay the same over the partitions a test spans, so any run compares with the fault-free one.
# Twelve requests over the small catalogue's public regions and a few sizes every region offers.
REQUESTS = [
    Request(tuple(sorted(regions)), tuple(sorted(sizes)))
    for regions in (("eastus", "eastus2", "westus2"), ("northeurope", "westeurope", "japaneast"))
    for sizes in (
        ("Standard_D2s_v3",), ("Standard_NC24ads_A100_v4",), ("Standard_D14", "Standard_DS14"), ("Basic_A1",),
        ("Standard_D2s_v3", "Basic_A1"), ("Standard_D14",),
    )
]  # fmt: skip


class Partition:
    """One stack; `collect(minutes)` runs the collector with both clocks `minutes` after T."""

    def __init__(self, stack, monkeypatch, workers: int = 16):
        self.stack, self.workers = stack, workers
        resources = use_stack(stack, monkeypatch)
        self.store = resources["store"]
        self.azure = azure_resource(stack.settings, max_tries=3, **FAST_AZURE)
        self.subscriptions = list(self.azure.principal().subscriptions)

    def collect(self, minutes: float = 0) -> SpsRun:
        now = T + timedelta(minutes=minutes)
        self.stack.emulator.set_time(now)
        collector = SpsCollector(
            client=self.azure.sps_client(), state=SpsStateStore(self.store), subscriptions=self.subscriptions,
            clock=lambda: now, workers=self.workers, sleep=lambda _: None,
        )  # fmt: skip
        return collector.collect(REQUESTS, desired_count=5)

    def state(self) -> RotationState:
        return RotationState.from_json(json.loads(self.store.get(STATE_KEY)))

    def answers_since(self, minutes: float) -> list[dict]:
        since = (T + timedelta(minutes=minutes)).isoformat()
        return [a for a in self.stack.emulator.stats()["sps_answers"] if a["time"] >= since]


def rows(run: SpsRun) -> pd.DataFrame:
    return score_rows(run.answers, 5, {}, {}).rows


@pytest.fixture(scope="module")
def fault_free() -> pd.DataFrame:
    with start(drift_rate=0.0, subscriptions=3) as stack, pytest.MonkeyPatch.context() as monkeypatch:
        run = Partition(stack, monkeypatch).collect()
        assert run.skipped_requests == run.failed_requests == 0 and run.throttled == 0
        return rows(run)


def test_a_subscription_without_the_role_is_parked_for_a_day_and_no_row_is_lost(fault_free, monkeypatch):
    with start(drift_rate=0.0, subscriptions=3, sps_subscriptions_without_role=1) as stack:
        p = Partition(stack, monkeypatch)
        roleless = p.subscriptions[-1]
        run = p.collect()
        pd.testing.assert_frame_equal(rows(run), fault_free)  # the other subscriptions asked for its requests
        assert run.forbidden_subscriptions == {roleless} and run.failed_requests == run.skipped_requests == 0
        assert run.subscriptions_missing_role == (roleless,)
        assert run.parked_subscriptions == {roleless: (T + DAY, MISSING_ROLE)}
        assert run.parked_subscriptions_metadata() == [
            {"subscription": roleless.split("-")[0] + "-...", "reason": MISSING_ROLE, "until": "2026-11-27 10:10:00"}
        ]
        assert p.state().parked_subscriptions == {roleless: (T + DAY, MISSING_ROLE)}
        assert {a["status"] for a in p.answers_since(0) if a["subscription"] == roleless} == {403}

        # the next partitions do not ask it, and keep reporting it (so the asset's check keeps failing) ...
        later = p.collect(minutes=10)
        pd.testing.assert_frame_equal(rows(later), fault_free)
        assert not [a for a in p.answers_since(10) if a["subscription"] == roleless]
        assert later.forbidden_subscriptions == set() and later.subscriptions_missing_role == (roleless,)
        # ... until the day is over: then it is tried again, and parked again while it still lacks the role
        next_day = p.collect(minutes=24 * 60 + 10)
        assert {a["status"] for a in p.answers_since(24 * 60 + 10) if a["subscription"] == roleless} == {403}
        assert next_day.parked_subscriptions[roleless] == (T + timedelta(days=2, minutes=10), MISSING_ROLE)


def test_a_429_rests_the_whole_subscription_for_the_window_azure_names(monkeypatch):
    """Each subscription may make 2 calls an hour over all its locations. After its 429 (Retry-After 3600 s)
    none of its 4 locations is asked again in that hour, in this partition or the next."""
    with start(drift_rate=0.0, subscriptions=3, sps_subscription_calls_per_hour=2) as stack:
        p = Partition(stack, monkeypatch, workers=1)  # batches of 2 calls, one after the other
        run = p.collect()
        first = p.answers_since(0)
        per_subscription = {s: [a["status"] for a in first if a["subscription"] == s] for s in p.subscriptions}
        for statuses in per_subscription.values():
            assert statuses.count(200) == 2 and 1 <= statuses.count(429) <= 2  # at most its own batch
        assert run.rested_subscriptions == set(p.subscriptions)
        assert len(run.answers) == 6 and run.skipped_requests == len(REQUESTS) - 6
        rest = T + timedelta(seconds=3600)
        assert p.state().parked_subscriptions == {s: (rest, THROTTLED) for s in p.subscriptions}
        assert run.subscriptions_missing_role == ()

        assert p.collect(minutes=10).calls == 0 and p.answers_since(10) == []  # nothing asked, nothing wasted
        resumed = p.collect(minutes=61)
        assert len(resumed.answers) == 6 and {a["status"] for a in p.answers_since(61)} >= {200}


def test_a_429_that_names_no_wait_rests_the_subscription_62_minutes(monkeypatch):
    """The SPS plain-text 429 ('try again after 3600 seconds') and a 429 without any wait: 3600 s and the
    rule's 62 minutes."""
    with start(drift_rate=0.0, subscriptions=1, url_locations=2, sps_calls_per_hour=1) as stack:
        p = Partition(stack, monkeypatch, workers=1)
        run = p.collect()
        assert run.throttled >= 1 and run.rested_subscriptions == {p.subscriptions[0]}
        assert p.state().parked_subscriptions == {p.subscriptions[0]: (T + timedelta(seconds=3600), THROTTLED)}


def test_locations_azure_lists_that_are_no_public_region_are_never_used(fault_free, monkeypatch):
    extra = ["eastusstage", "msftwestus"]
    with start(drift_rate=0.0, subscriptions=3, sps_extra_locations=extra) as stack:
        p = Partition(stack, monkeypatch)
        run = p.collect()
        pd.testing.assert_frame_equal(rows(run), fault_free)
        assert run.failed_requests == 0 and sorted(run.ignored_locations) == extra
        assert not set(extra) & set(p.state().url_locations)
        assert not [a for a in p.answers_since(0) if a["location"] in extra]


def test_a_stored_location_list_is_cleaned_of_non_public_names(fault_free, monkeypatch):
    """Production's stored state may already list them: they are left out when the state is used."""
    with start(drift_rate=0.0, subscriptions=3, sps_extra_locations=["eastusstage"]) as stack:
        p = Partition(stack, monkeypatch)
        locations = ["eastus", "eastus2", "eastusstage", "westus", "westus2"]
        stored = {**RotationState().to_json(), "url_locations": locations}  # as version-1 code writes it
        p.store.put(STATE_KEY, json.dumps(stored).encode(), content_type="application/json")
        run = p.collect()
        pd.testing.assert_frame_equal(rows(run), fault_free)
        assert run.ignored_locations == ("eastusstage",)
        assert not [a for a in p.answers_since(0) if a["location"] == "eastusstage"]


def test_the_asset_reports_parked_subscriptions_and_fails_its_check(monkeypatch):
    """Through the asset: the parked subscription is in metadata (shortened id), `sps_subscriptions` fails (an ERROR
    check, so the run's alert names it), and coverage is still complete from the other subscriptions."""
    from .stack import check_evaluations, graph, metadata, run_assets

    with start(drift_rate=0.0, subscriptions=3, sps_subscriptions_without_role=1) as stack:
        first = "2026-11-26-00:00"
        price, pool, sps = graph("azure_price_raw"), graph("azure_sps_request_pool"), graph("azure_sps_raw")
        assert run_assets(stack, monkeypatch, price, first, data_time(first)).success
        assert run_assets(stack, monkeypatch, pool, first[:10], data_time(first)).success
        result = run_assets(stack, monkeypatch, sps, "2026-11-26-10:00", T)
        assert result.success
        check = check_evaluations(result)[("azure_sps_raw", "sps_subscriptions")]
        assert not check.passed and "Compute Recommendations Role" in check.metadata["error"].value
        meta = metadata(result, "azure_sps_raw")
        assert [p["reason"] for p in meta["parked_subscriptions"]] == [MISSING_ROLE]
        assert meta["subscriptions_forbidden"] == 1 and meta["coverage"] == 1.0
