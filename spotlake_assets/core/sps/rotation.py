"""SPS quota rotation over (subscription, URL location) pairs, as a pure, JSON-serialisable state machine.

Rules (docs/design.md "Spot Placement Scores and the quota"): pairs are used round-robin, continuing after the
last pair used; a pair takes at most 10 calls in any sliding 62 minutes; a pair that answered 429 is parked for 62
minutes. Whole subscriptions are parked too (docs/azure-sources.md): one that answered 403 (no "Compute
Recommendations Role") for a day, one that answered 429 for Azure's window (its Retry-After, else 62 minutes),
since the call counts against the subscription's read quota. The state also carries what the collector learned:
invalid regions, invalid sizes (each with the time it was learned: after RELEARN_AFTER it is asked again, so one
400 is not forever) and the usable URL locations.

Every function returns a new state and never mutates its input, so a caller can write the new state with a
conditional put *before* calling Azure (a reserved call counts even if it later fails) and, on a conflicting
write, re-read and apply the same change again (resources/sps_state.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

Pair = tuple[str, str]  # (subscription id, URL location)

WINDOW = timedelta(minutes=62)
CALLS_PER_WINDOW = 10
PARK_FOR = timedelta(minutes=62)
# History and parks are kept this much longer than they matter at `now`, so that a run whose clock is up to
# this much behind the previous run's still sees every call that shares a window with its own.
CLOCK_SKEW = timedelta(minutes=10)
# Version of the JSON document; bump when a reader of the previous version would misread it. Version 1 gained the
# optional `parked_subscriptions` list, written only when a subscription is parked: a document without it reads as
# no parked subscription, and a reader that does not know it ignores it (it then only forgets the parks). Likewise
# the optional `invalid_regions_learned_at` / `invalid_sizes_learned_at` maps: a name without a time (a document
# written before them) is asked again at once, and an older reader keeps excluding every listed name.
STATE_VERSION = 1
# An invalid region or size is left out of requests for this long after it was learned; the first daily request
# pool built after that asks it again (docs/design.md "Spot Placement Scores and the quota").
RELEARN_AFTER = timedelta(days=1)
MISSING_ROLE = "missing_role"  # 403: the subscription lacks the "Compute Recommendations Role"
THROTTLED = "throttled"  # 429: the subscription's read quota is spent
PARK_REASONS = (MISSING_ROLE, THROTTLED)
MISSING_ROLE_PARK = timedelta(days=1)
MAX_SUBSCRIPTION_PARK = timedelta(days=1)
_TIME_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError(f"time {t!r} has no time zone; SPS rotation needs aware UTC times")
    return t.astimezone(UTC)


def _reason(reason: str) -> str:
    if reason not in PARK_REASONS:
        raise ValueError(f"subscription park reason {reason!r} is not one of {PARK_REASONS}")
    return reason


def _format(t: datetime) -> str:
    return t.strftime(_TIME_FMT)


def _parse(text: str) -> datetime:
    return _utc(datetime.strptime(text, _TIME_FMT).replace(tzinfo=UTC))


@dataclass(frozen=True)
class RotationState:
    """Persisted SPS rotation state; normalised when built, so equal states serialise equal."""

    history: Mapping[Pair, tuple[datetime, ...]] = field(default_factory=dict)  # reserved call times per pair
    parked: Mapping[Pair, datetime] = field(default_factory=dict)  # pair -> parked until
    # subscription -> (parked until, reason in PARK_REASONS)
    parked_subscriptions: Mapping[str, tuple[datetime, str]] = field(default_factory=dict)
    last_pair: Pair | None = None
    # name -> when it was learned invalid (None: stored before times were kept)
    invalid_regions: Mapping[str, datetime | None] = field(default_factory=dict)
    invalid_sizes: Mapping[str, datetime | None] = field(default_factory=dict)
    url_locations: tuple[str, ...] = ()
    version: int = STATE_VERSION

    def __post_init__(self) -> None:
        canonical = {
            "history": {
                tuple(p): tuple(sorted(_utc(t) for t in ts)) for p, ts in sorted(self.history.items()) if ts
            },
            "parked": {tuple(p): _utc(t) for p, t in sorted(self.parked.items())},
            "parked_subscriptions": {
                sub: (_utc(until), _reason(why)) for sub, (until, why) in sorted(self.parked_subscriptions.items())
            },
            "last_pair": tuple(self.last_pair) if self.last_pair is not None else None,
            "invalid_regions": _learned_at(self.invalid_regions),
            "invalid_sizes": _learned_at(self.invalid_sizes),
            "url_locations": tuple(sorted(set(self.url_locations))),
        }
        for name, value in canonical.items():
            object.__setattr__(self, name, value)  # frozen: normalise once, here

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with a fixed key order and sorted lists; `parked_subscriptions` only when there is
        one (so a state without any is byte for byte what version-1 code writes)."""
        doc = {
            "version": self.version,
            "last_pair": list(self.last_pair) if self.last_pair else None,
            "history": [
                {"subscription": s, "location": loc, "calls": [_format(t) for t in ts]}
                for (s, loc), ts in self.history.items()
            ],
            "parked": [
                {"subscription": s, "location": loc, "until": _format(t)}
                for (s, loc), t in self.parked.items()
            ],
            "parked_subscriptions": [
                {"subscription": sub, "until": _format(until), "reason": reason}
                for sub, (until, reason) in self.parked_subscriptions.items()
            ],
            "invalid_regions": list(self.invalid_regions),
            "invalid_sizes": list(self.invalid_sizes),
            "url_locations": list(self.url_locations),
        }
        for kind in ("regions", "sizes"):
            times = {name: _format(t) for name, t in getattr(self, f"invalid_{kind}").items() if t is not None}
            if times:
                doc[f"invalid_{kind}_learned_at"] = times
        if not doc["parked_subscriptions"]:
            del doc["parked_subscriptions"]
        return doc

    def to_bytes(self) -> bytes:
        """The stored form: equal states give equal bytes."""
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RotationState:
        version = doc.get("version")
        if version != STATE_VERSION:
            raise ValueError(
                f"SPS rotation state has version {version!r}; this code reads version {STATE_VERSION}"
            )
        try:
            return cls(
                history={
                    (h["subscription"], h["location"]): tuple(map(_parse, h["calls"])) for h in doc["history"]
                },
                parked={(p["subscription"], p["location"]): _parse(p["until"]) for p in doc["parked"]},
                parked_subscriptions={
                    p["subscription"]: (_parse(p["until"]), p["reason"]) for p in doc.get("parked_subscriptions", [])
                },
                last_pair=tuple(doc["last_pair"]) if doc["last_pair"] else None,
                invalid_regions=_read_learned(doc, "regions"),
                invalid_sizes=_read_learned(doc, "sizes"),
                url_locations=tuple(doc["url_locations"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"SPS rotation state is malformed: {exc!r}") from exc


@lru_cache(maxsize=8)
def _pair_order(subscriptions: tuple[str, ...], locations: tuple[str, ...]) -> tuple[Pair, ...]:
    n_subs, n_locs = len(subscriptions), len(locations)
    if not n_subs or not n_locs:
        return ()
    # The "diagonals" (k mod S, (k + c) mod L) change both coordinates at every step; there are gcd(S, L)
    # of them, each lcm(S, L) long, and together they hold every pair once. Each next diagonal is rotated to
    # start on a pair that differs in both coordinates from where the previous one ended, where one exists.
    length = math.lcm(n_subs, n_locs)
    order: list[tuple[int, int]] = []
    for c in range(math.gcd(n_subs, n_locs)):
        diagonal = [(k % n_subs, (k + c) % n_locs) for k in range(length)]
        start = 0
        if order:
            prev_s, prev_l = order[-1]
            start = next((j for j, (s, loc) in enumerate(diagonal) if s != prev_s and loc != prev_l), 0)
        order.extend(diagonal[start:] + diagonal[:start])
    return tuple((subscriptions[s], locations[loc]) for s, loc in order)


def pair_order(subscriptions: Iterable[str], locations: Iterable[str]) -> tuple[Pair, ...]:
    """Every (subscription, location) pair once, consecutive pairs differing in both where possible."""
    return _pair_order(tuple(sorted(set(subscriptions))), tuple(sorted(set(locations))))


def _counts_against(calls: Iterable[datetime], now: datetime) -> int:
    # Calls within a window either side of `now`: with times that only move forward this is the sliding-window
    # count, and it stays safe when a run's clock is behind the recorded calls.
    return sum(1 for t in calls if abs(t - now) < WINDOW)


def reserve(
    state: RotationState, n: int, now: datetime, subscriptions: Iterable[str], locations: Iterable[str]
) -> tuple[RotationState, list[Pair]]:
    """Reserve up to n calls at `now`, round-robin from after state.last_pair (one per pair per lap).

    Parked pairs and pairs at the window limit are skipped, so fewer than n pairs come back when capacity is
    short. Each reservation is recorded in the history at `now`; history and parks that no longer matter
    (allowing CLOCK_SKEW) are pruned.
    """
    now = _utc(now)
    order = pair_order(subscriptions, locations)
    history = {p: [t for t in ts if t > now - WINDOW - CLOCK_SKEW] for p, ts in state.history.items()}
    parked = {p: until for p, until in state.parked.items() if until > now - CLOCK_SKEW}
    resting = parked_subscriptions(state, now)
    free = {p for p in order if state.parked.get(p, now) <= now and p[0] not in resting}
    used = {p: _counts_against(history.get(p, ()), now) for p in order}
    cursor = order.index(state.last_pair) + 1 if state.last_pair in used else 0
    taken: list[Pair] = []
    misses = 0
    while len(taken) < n and misses < len(order):
        pair = order[cursor % len(order)]
        cursor += 1
        if pair not in free or used[pair] >= CALLS_PER_WINDOW:
            misses += 1
            continue
        misses = 0
        used[pair] += 1
        history.setdefault(pair, []).append(now)
        taken.append(pair)
    last_pair = taken[-1] if taken else state.last_pair
    new_state = replace(
        state,
        history={p: tuple(ts) for p, ts in history.items()},
        parked=parked,
        parked_subscriptions=_live_subscription_parks(state, now),
        last_pair=last_pair,
    )
    return new_state, taken


def park(state: RotationState, pair: Pair, now: datetime) -> RotationState:
    """Park a pair that answered 429 until 62 minutes after `now` (an existing longer park is kept)."""
    until = _utc(now) + PARK_FOR
    parked = {p: t for p, t in state.parked.items() if t > _utc(now) - CLOCK_SKEW}
    parked[tuple(pair)] = max(until, parked.get(tuple(pair), until))
    return replace(state, parked=parked)


def park_subscription(
    state: RotationState, subscription: str, now: datetime, duration: timedelta, reason: str
) -> RotationState:
    """Park every pair of a subscription for `duration` after `now` (at most a day); an existing longer park
    is kept, with its reason."""
    now = _utc(now)
    until = now + min(duration, MAX_SUBSCRIPTION_PARK)
    parks = _live_subscription_parks(state, now)
    if subscription not in parks or parks[subscription][0] < until:
        parks[subscription] = (until, _reason(reason))
    return replace(state, parked_subscriptions=parks)


def parked_subscriptions(state: RotationState, now: datetime) -> dict[str, tuple[datetime, str]]:
    """The subscription parks in force at `now`: subscription -> (until, reason)."""
    now = _utc(now)
    return {sub: park for sub, park in state.parked_subscriptions.items() if park[0] > now}


def _live_subscription_parks(state: RotationState, now: datetime) -> dict[str, tuple[datetime, str]]:
    # kept CLOCK_SKEW past their end, like pair parks, for a run whose clock is behind
    return {sub: park for sub, park in state.parked_subscriptions.items() if park[0] > now - CLOCK_SKEW}


def learn_invalid_region(state: RotationState, region: str, now: datetime) -> RotationState:
    """`region` answered invalid at `now`: left out until RELEARN_AFTER has passed (entries long past that are
    dropped, so the list does not grow forever)."""
    return replace(state, invalid_regions=_learn(state.invalid_regions, region, now))


def learn_invalid_size(state: RotationState, size: str, now: datetime) -> RotationState:
    return replace(state, invalid_sizes=_learn(state.invalid_sizes, size, now))


def invalid_in_force(state: RotationState, now: datetime) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(regions, sizes) to leave out of requests at `now`: learned less than RELEARN_AFTER ago."""
    now = _utc(now)

    def live(learned: Mapping[str, datetime | None]) -> tuple[str, ...]:
        return tuple(name for name, t in learned.items() if t is not None and now - t < RELEARN_AFTER)

    return live(state.invalid_regions), live(state.invalid_sizes)


def _learn(learned: Mapping[str, datetime | None], name: str, now: datetime) -> dict[str, datetime | None]:
    now = _utc(now)
    keep = {n: t for n, t in learned.items() if t is not None and now - t < RELEARN_AFTER + CLOCK_SKEW}
    return {**keep, name: now}


def _learned_at(learned: Mapping[str, datetime | None]) -> dict[str, datetime | None]:
    return {name: None if t is None else _utc(t) for name, t in sorted(learned.items())}


def _read_learned(doc: Mapping[str, Any], kind: str) -> dict[str, datetime | None]:
    times = doc.get(f"invalid_{kind}_learned_at", {})
    return {name: _parse(times[name]) if name in times else None for name in doc[f"invalid_{kind}"]}


def set_url_locations(state: RotationState, locations: Iterable[str]) -> RotationState:
    """Replace the discovered URL locations (from the 'supported locations are ...' error)."""
    return replace(state, url_locations=tuple(locations))
