"""SPS quota rotation: round robin, the 10-calls-in-62-minutes limit, parking, learned lists, JSON form."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from spotlake_assets.core.sps.rotation import (
    CALLS_PER_WINDOW,
    CLOCK_SKEW,
    MISSING_ROLE,
    RELEARN_AFTER,
    THROTTLED,
    RotationState,
    invalid_in_force,
    learn_invalid_region,
    learn_invalid_size,
    pair_order,
    park,
    park_subscription,
    parked_subscriptions,
    reserve,
    set_url_locations,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SUBS = ["sub-b", "sub-a", "sub-c"]
LOCS = ["westus", "eastus", "koreacentral", "northeurope"]
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize("n_subs,n_locs", [(1, 1), (1, 4), (3, 4), (4, 6), (5, 5), (2, 2), (91, 56)])
def test_pair_order_holds_every_pair_once_and_changes_both_where_possible(n_subs, n_locs):
    subs = [f"s{i:02d}" for i in range(n_subs)]
    locs = [f"l{i:02d}" for i in range(n_locs)]
    order = pair_order(reversed(subs), locs)
    assert sorted(order) == sorted((s, loc) for s in subs for loc in locs)
    if n_subs >= 3 and n_locs >= 3:
        assert all(a[0] != b[0] and a[1] != b[1] for a, b in zip(order, order[1:], strict=False))


def test_round_robin_continues_after_the_last_pair_across_calls():
    order = pair_order(SUBS, LOCS)
    state, first = reserve(RotationState(), 5, T0, SUBS, LOCS)
    state, second = reserve(state, 4, T0 + MIN, SUBS, LOCS)
    assert first + second == list(order[:9])
    assert state.last_pair == order[8]
    # Once a lap is done it wraps around: one call per pair per lap.
    state, third = reserve(state, len(order), T0 + 2 * MIN, SUBS, LOCS)
    assert third == list(order[9:] + order[:9])


def test_reserve_does_not_mutate_its_input():
    state = RotationState()
    before = state.to_bytes()
    reserve(state, 3, T0, SUBS, LOCS)
    park(state, ("sub-a", "eastus"), T0)
    learn_invalid_size(state, "Standard_X", T0)
    assert state.to_bytes() == before


def test_capacity_exhausted_returns_fewer_pairs_until_the_window_slides():
    subs, locs = ["s1", "s2"], ["l1", "l2"]
    state, got = reserve(RotationState(), 50, T0, subs, locs)
    assert len(got) == 40 and all(got.count(p) == 10 for p in set(got))
    state, got = reserve(state, 5, T0 + 61 * MIN, subs, locs)
    assert got == []
    state, got = reserve(state, 50, T0 + 62 * MIN, subs, locs)
    assert len(got) == 40


def test_parked_pair_is_skipped_until_62_minutes_pass():
    pair = pair_order(SUBS, LOCS)[0]
    state = park(RotationState(), pair, T0)
    _, got = reserve(state, 12, T0 + 61 * MIN, SUBS, LOCS)
    assert pair not in got and len(got) == 12
    _, got = reserve(state, 12, T0 + 62 * MIN, SUBS, LOCS)
    assert pair in got


def test_no_sliding_62_minute_window_ever_holds_more_than_10_calls():
    rng = random.Random(11)
    subs, locs = ["s1", "s2", "s3"], ["l1", "l2"]
    for _ in range(30):
        state, now, newest = RotationState(), T0, T0
        calls: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        for _ in range(60):
            # Mostly forward, sometimes a run whose clock is behind the newest run's (within CLOCK_SKEW).
            now = max(newest - CLOCK_SKEW, now + timedelta(seconds=rng.randint(-CLOCK_SKEW.seconds, 900)))
            newest = max(newest, now)
            state = RotationState.from_json(json.loads(state.to_bytes()))  # as if stored between runs
            state, got = reserve(state, rng.randint(0, 40), now, subs, locs)
            for pair in got:
                calls[pair].append(now)
            if got and rng.random() < 0.1:
                state = park(state, rng.choice(got), now)
        for times in calls.values():
            times.sort()
            for t in times:
                assert sum(1 for u in times if t <= u < t + timedelta(minutes=62)) <= 10


def test_json_round_trip_and_equal_states_give_equal_bytes():
    state, _ = reserve(RotationState(), 7, T0, SUBS, LOCS)
    state = park(state, ("sub-a", "eastus"), T0 + MIN)
    a = learn_invalid_size(learn_invalid_size(state, "Standard_Y", T0), "Standard_X", T0)
    a = learn_invalid_region(set_url_locations(a, ["westus", "eastus", "eastus"]), "nowhere", T0)
    b = learn_invalid_region(set_url_locations(state, ["eastus", "westus"]), "nowhere", T0)
    b = learn_invalid_size(learn_invalid_size(b, "Standard_X", T0), "Standard_Y", T0)
    assert a == b and a.to_bytes() == b.to_bytes()
    assert RotationState.from_json(json.loads(a.to_bytes())) == a
    doc = a.to_json()
    assert list(doc) == [
        "version", "last_pair", "history", "parked", "invalid_regions", "invalid_sizes", "url_locations",
        "invalid_regions_learned_at", "invalid_sizes_learned_at",
    ]  # fmt: skip  (parked_subscriptions only when a subscription is parked: version-1 bytes otherwise)
    until = "2026-03-01T13:03:00.000000Z"
    assert doc["parked"] == [{"subscription": "sub-a", "location": "eastus", "until": until}]
    assert doc["url_locations"] == ["eastus", "westus"]
    assert doc["invalid_sizes"] == ["Standard_X", "Standard_Y"]
    assert doc["invalid_regions_learned_at"] == {"nowhere": "2026-03-01T12:00:00.000000Z"}


def test_an_invalid_region_or_size_is_asked_again_a_day_after_it_was_learned():
    state = learn_invalid_size(learn_invalid_region(RotationState(), "nowhere", T0), "Standard_X", T0 + HOUR)
    assert invalid_in_force(state, T0 + RELEARN_AFTER - MIN) == (("nowhere",), ("Standard_X",))
    assert invalid_in_force(state, T0 + RELEARN_AFTER) == ((), ("Standard_X",))
    assert invalid_in_force(state, T0 + HOUR + RELEARN_AFTER) == ((), ())
    # still invalid when asked again: learned again, and the day starts over
    later = T0 + 2 * RELEARN_AFTER
    again = learn_invalid_region(state, "nowhere", later)
    assert invalid_in_force(again, later + HOUR) == (("nowhere",), ())
    # entries long past their day are dropped when something is learned, so the lists do not grow forever
    assert set(again.invalid_sizes) == {"Standard_X"}
    assert set(learn_invalid_size(again, "B", later).invalid_sizes) == {"B"}
    assert RotationState.from_json(json.loads(again.to_bytes())) == again


def test_names_stored_before_learning_times_were_kept_are_asked_again_at_once():
    state = RotationState.from_json(VERSION_1)
    assert list(state.invalid_regions) == ["nowhere"]
    assert invalid_in_force(state, T0) == ((), ())
    assert state.to_bytes() == json.dumps(VERSION_1, separators=(",", ":")).encode()


def test_unknown_version_and_malformed_documents_are_refused():
    doc = RotationState().to_json()
    with pytest.raises(ValueError, match="version 2"):
        RotationState.from_json({**doc, "version": 2})
    with pytest.raises(ValueError, match="malformed"):
        RotationState.from_json({**doc, "parked": [{"subscription": "s"}]})


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="no time zone"):
        reserve(RotationState(), 1, datetime(2026, 3, 1, 12, 0), SUBS, LOCS)


# A version-1 document as production stores it before subscriptions could be parked.
VERSION_1 = {
    "version": 1,
    "last_pair": ["sub-a", "eastus"],
    "history": [{"subscription": "sub-a", "location": "eastus", "calls": ["2026-03-01T11:59:00.000000Z"]}],
    "parked": [{"subscription": "sub-b", "location": "westus", "until": "2026-03-01T12:30:00.000000Z"}],
    "invalid_regions": ["nowhere"],
    "invalid_sizes": [],
    "url_locations": ["eastus", "westus"],
}


def test_a_version_1_document_without_subscription_parks_still_reads():
    state = RotationState.from_json(VERSION_1)
    assert state.parked_subscriptions == {} and state.last_pair == ("sub-a", "eastus")
    assert state.parked == {("sub-b", "westus"): datetime(2026, 3, 1, 12, 30, tzinfo=UTC)}
    assert RotationState.from_json(json.loads(state.to_bytes())) == state
    assert json.loads(state.to_bytes())["version"] == 1


def test_a_parked_subscription_has_none_of_its_pairs_reserved_until_the_park_ends():
    state = park_subscription(RotationState(), "sub-a", T0, timedelta(days=1), MISSING_ROLE)
    state = park_subscription(state, "sub-b", T0, timedelta(minutes=30), THROTTLED)
    state, taken = reserve(state, 100, T0 + MIN, SUBS, LOCS)
    assert len(taken) == CALLS_PER_WINDOW * len(LOCS) and {sub for sub, _ in taken} == {"sub-c"}
    assert parked_subscriptions(state, T0 + MIN) == {
        "sub-a": (T0 + timedelta(days=1), MISSING_ROLE), "sub-b": (T0 + 30 * MIN, THROTTLED),
    }  # fmt: skip
    state, taken = reserve(state, 100, T0 + 31 * MIN, SUBS, LOCS)
    assert {sub for sub, _ in taken} == {"sub-b"}  # sub-c is at its window's limit
    state, taken = reserve(state, 100, T0 + timedelta(days=1, minutes=1), SUBS, LOCS)
    assert {sub for sub, _ in taken} == set(SUBS)
    assert RotationState.from_json(json.loads(state.to_bytes())) == state


def test_a_longer_park_is_kept_parks_last_at_most_a_day_and_reasons_are_checked():
    state = park_subscription(RotationState(), "sub-a", T0, timedelta(days=1), MISSING_ROLE)
    assert park_subscription(state, "sub-a", T0, timedelta(minutes=62), THROTTLED) == state
    later = park_subscription(state, "sub-a", T0 + timedelta(hours=2), timedelta(days=1), THROTTLED)
    assert later.parked_subscriptions["sub-a"] == (T0 + timedelta(days=1, hours=2), THROTTLED)
    capped = park_subscription(RotationState(), "sub-a", T0, timedelta(days=30), THROTTLED)
    assert capped.parked_subscriptions["sub-a"][0] == T0 + timedelta(days=1)
    doc = json.loads(capped.to_bytes())
    assert list(doc)[4] == "parked_subscriptions"
    assert doc["parked_subscriptions"] == [
        {"subscription": "sub-a", "until": "2026-03-02T12:00:00.000000Z", "reason": "throttled"}
    ]
    with pytest.raises(ValueError, match="reason"):
        park_subscription(RotationState(), "sub-a", T0, MIN, "bored")
    with pytest.raises(ValueError, match="malformed"):
        RotationState.from_json({**doc, "parked_subscriptions": [{**doc["parked_subscriptions"][0], "reason": "x"}]})
