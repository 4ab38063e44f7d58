"""One partition's SPS collection: reserve quota, call, learn, retry on other pairs, stop when quota runs out.

Each batch of calls is reserved in the persisted rotation state (a conditional write) *before* it is sent, so two
runs at once never spend the same pair twice beyond its limit; what a batch learned (invalid regions and sizes,
throttled pairs, parked subscriptions) is written with the next reservation. Nothing here waits for quota: when no
pair is free, the remaining requests are counted as skipped and the partition is materialized with what it has.

`max_calls` caps the calls of one collection, discovery included (`test` has a cap: it shares production's
subscriptions, and Azure counts both environments' calls against the same quota; docs/security.md). Requests left
when the cap is reached are skipped like those left when quota runs out; a cap of 0 makes no call at all.

Subscriptions (docs/azure-sources.md): one that answers 403 lacks the "Compute Recommendations Role" and is parked
for a day; one that answers 429 has spent its read quota and rests, every location of it, for Azure's window (its
Retry-After or "try again after N seconds", else 62 minutes). URL locations are only the public region codes of
the project's region list, whatever else Azure lists as supported.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from spotlake_assets.core.azure_regions import split_public
from spotlake_assets.core.sps.packing import Request
from spotlake_assets.core.sps.rotation import (
    MISSING_ROLE,
    MISSING_ROLE_PARK,
    PARK_FOR,
    THROTTLED,
    Pair,
    RotationState,
    invalid_in_force,
    learn_invalid_region,
    learn_invalid_size,
    park,
    park_subscription,
    parked_subscriptions,
    reserve,
    set_url_locations,
)

from .azure_sps import Outcome, SpsAnswer, SpsClient
from .sps_state import SpsStateStore

log = logging.getLogger(__name__)


class SpsCollectionError(RuntimeError):
    pass


@dataclass(frozen=True)
class Task:
    regions: tuple[str, ...]
    sizes: tuple[str, ...]
    attempts: int = 0  # failed tries that were not the request's fault (5xx, timeouts)


@dataclass
class Learned:
    """What one batch taught, applied to the state with the next reservation."""

    regions: set[str] = field(default_factory=set)
    sizes: set[str] = field(default_factory=set)
    parked: set[Pair] = field(default_factory=set)
    # subscription -> (how long, reason); the longest of a batch wins
    parked_subscriptions: dict[str, tuple[timedelta, str]] = field(default_factory=dict)
    url_locations: tuple[str, ...] = ()

    def park_subscription(self, subscription: str, duration: timedelta, reason: str) -> None:
        if duration > self.parked_subscriptions.get(subscription, (timedelta(0), reason))[0]:
            self.parked_subscriptions[subscription] = (duration, reason)

    def __bool__(self) -> bool:
        return bool(self.regions or self.sizes or self.parked or self.parked_subscriptions or self.url_locations)

    def apply(self, state: RotationState, now: datetime) -> RotationState:
        regions, sizes = invalid_in_force(state, now)
        for region in sorted(self.regions - set(regions)):
            state = learn_invalid_region(state, region, now)
        for size in sorted(self.sizes - set(sizes)):
            state = learn_invalid_size(state, size, now)
        for pair in sorted(self.parked):
            state = park(state, pair, now)
        for subscription, (duration, reason) in sorted(self.parked_subscriptions.items()):
            state = park_subscription(state, subscription, now, duration, reason)
        if self.url_locations:
            state = set_url_locations(state, self.url_locations)
        return state


@dataclass
class SpsRun:
    answers: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    discovery_calls: int = 0  # calls that asked for the supported URL locations
    capped: bool = False  # the call cap (max_calls) stopped the collection
    retries: int = 0
    throttled: int = 0
    skipped_requests: int = 0
    failed_requests: int = 0
    learned_regions: set[str] = field(default_factory=set)
    learned_sizes: set[str] = field(default_factory=set)
    known_invalid_regions: tuple[str, ...] = ()  # persisted before this run (its requests left them out)
    known_invalid_sizes: tuple[str, ...] = ()
    pairs_used: set[Pair] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)  # "status outcome code" -> count, for metadata
    forbidden_subscriptions: set[str] = field(default_factory=set)  # answered 403 in this run: parked for a day
    rested_subscriptions: set[str] = field(default_factory=set)  # answered 429 in this run: resting
    # every subscription park in force when the run ended (this run's and earlier ones): sub -> (until, reason)
    parked_subscriptions: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    ignored_locations: tuple[str, ...] = ()  # names Azure lists as supported that are no public region code

    @property
    def subscriptions_missing_role(self) -> tuple[str, ...]:
        """Subscriptions parked, when the run ended, because they lack the role (a check should fail on these)."""
        return tuple(sorted(s for s, (_, why) in self.parked_subscriptions.items() if why == MISSING_ROLE))

    def parked_subscriptions_metadata(self) -> list[dict[str, str]]:
        """The subscription parks for run metadata: a shortened subscription id, the reason and the end (UTC)."""
        return [
            {"subscription": short_subscription(s), "reason": why, "until": until.strftime("%Y-%m-%d %H:%M:%S")}
            for s, (until, why) in sorted(self.parked_subscriptions.items())
        ]


def short_subscription(subscription: str) -> str:
    """Enough of a subscription id to tell which one (its first group), for logs and metadata."""
    return subscription.split("-", 1)[0] + "-..."


@dataclass
class SpsCollector:
    client: SpsClient
    state: SpsStateStore
    subscriptions: Sequence[str]
    clock: Callable[[], datetime]
    workers: int = 16
    max_attempts: int = 5
    deadline_seconds: float = 420.0  # the partition's run must end well inside its 10 minutes
    max_calls: int | None = None  # calls of one collection, discovery included; None: no cap
    sleep: Callable[[float], None] = time.sleep
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def calls_left(self, run: SpsRun) -> int | None:
        """Calls the cap still allows in this collection (None: no cap)."""
        if self.max_calls is None:
            return None
        return max(0, self.max_calls - run.calls - run.discovery_calls)

    def url_locations(self, current: RotationState, run: SpsRun) -> tuple[str, ...]:
        """The usable URL locations: the learned ones, else those Azure's 'supported locations are' error lists
        (persisted); either way only public region codes of the project's list, the rest noted in the run."""
        if current.url_locations:
            kept, run.ignored_locations = split_public(current.url_locations)
            if kept:
                return kept
        resting = parked_subscriptions(current, self.clock())
        budget = 3 * self.max_attempts  # calls, over all subscriptions
        for subscription in (s for s in self.subscriptions if s not in resting):
            for _ in range(self.max_attempts):
                if budget <= 0 or self.calls_left(run) == 0:
                    break
                budget -= 1
                run.discovery_calls += 1
                answer = self.client.discover_locations(subscription)
                if answer.outcome is Outcome.UNSUPPORTED_LOCATION:
                    kept, run.ignored_locations = split_public(answer.locations)
                    if not kept:
                        raise SpsCollectionError(
                            f"none of the SPS URL locations Azure lists is a public region: {answer.locations[:10]}"
                        )
                    self._persist(Learned(url_locations=kept), run)
                    return kept
                learned = Learned()
                if self._park_subscription(subscription, answer, run, learned):
                    self._persist(learned, run)
                    break  # parked: ask the next subscription
                if answer.outcome not in (Outcome.TRANSIENT, Outcome.THROTTLED):
                    break  # another answer would be the same
        if self.calls_left(run) == 0:
            raise SpsCollectionError(
                f"the SPS call cap ({self.max_calls} a run) was reached before the URL locations were discovered"
            )
        raise SpsCollectionError("could not discover the SPS URL locations (no 'supported locations are' answer)")

    def collect(self, requests: Sequence[Request], desired_count: int) -> SpsRun:
        if not self.subscriptions:
            raise SpsCollectionError("no Azure subscriptions configured for SPS (AZURE_SUBSCRIPTIONS / AzureAuth)")
        current, now = self.state.load(), self.clock()
        # learned invalid less than a day ago; older ones are asked again (and learned again if still invalid)
        invalid_regions, invalid_sizes = invalid_in_force(current, now)
        run = SpsRun(
            known_invalid_regions=invalid_regions,
            known_invalid_sizes=invalid_sizes,
            parked_subscriptions=parked_subscriptions(current, now),
        )
        pending = deque(
            t
            for t in (_without(Task(r.regions, r.sizes), invalid_regions, invalid_sizes) for r in requests)
            if t is not None
        )
        if self.calls_left(run) == 0:
            log.warning("SPS call cap is 0: %d requests skipped, no call made", len(pending))
            run.capped, run.skipped_requests = True, len(pending)
            return run
        locations = self.url_locations(current, run)
        learned = Learned()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sps") as pool:
            while pending and time.monotonic() - started < self.deadline_seconds:
                want = min(len(pending), self.workers * 2)
                left = self.calls_left(run)
                if left is not None:
                    if left == 0:
                        run.capped = True
                        log.warning("SPS call cap (%d) reached: %d requests skipped", self.max_calls, len(pending))
                        break
                    want = min(want, left)
                to_apply, learned = learned, Learned()

                def reserve_batch(
                    state: RotationState, to_apply: Learned = to_apply, want: int = want
                ) -> tuple[RotationState, list[Pair]]:
                    now = self.clock()
                    state, pairs = reserve(to_apply.apply(state, now), want, now, self.subscriptions, locations)
                    run.parked_subscriptions = parked_subscriptions(state, now)
                    return state, pairs

                pairs = self.state.update(reserve_batch)
                if not pairs:
                    log.warning(
                        "SPS quota exhausted: no free (subscription, location) pair for %d requests", len(pending)
                    )
                    break
                batch = [pending.popleft() for _ in pairs]
                answers = pool.map(
                    lambda tp: self.client.call(tp[1][0], tp[1][1], desired_count, tp[0].regions, tp[0].sizes),
                    list(zip(batch, pairs, strict=True)),
                )
                transient = False
                for task, pair, answer in zip(batch, pairs, answers, strict=True):
                    run.calls += 1
                    run.pairs_used.add(pair)
                    retry = self._handle(task, pair, answer, run, learned)
                    if retry is not None:
                        pending.append(retry)
                        run.retries += 1
                        transient |= answer.outcome is Outcome.TRANSIENT
                if transient:  # another pair is used next, so a short jittered pause is enough
                    self.sleep(self._rng.uniform(0.0, 0.5))
        run.skipped_requests = len(pending)
        if learned:
            self._persist(learned, run)
        return run

    def _persist(self, learned: Learned, run: SpsRun) -> None:
        """Write what was learned into the stored state (conditionally), noting the subscription parks in force."""

        def change(state: RotationState) -> tuple[RotationState, None]:
            now = self.clock()
            state = learned.apply(state, now)
            run.parked_subscriptions = parked_subscriptions(state, now)
            return state, None

        self.state.update(change)

    def _handle(self, task: Task, pair: Pair, answer: SpsAnswer, run: SpsRun, learned: Learned) -> Task | None:
        """Record one answer; returns the task to try again, or None."""
        match answer.outcome:
            case Outcome.OK:
                run.answers.append(answer.body)  # type: ignore[arg-type]
                return None
            case Outcome.INVALID_REGION | Outcome.INVALID_SIZE:
                bad = answer.value or ""
                regions, sizes = task.regions, task.sizes
                if answer.outcome is Outcome.INVALID_REGION:
                    learned.regions.add(bad)
                    run.learned_regions.add(bad)
                    regions = tuple(r for r in regions if r.casefold() != bad.casefold())
                else:
                    learned.sizes.add(bad)
                    run.learned_sizes.add(bad)
                    sizes = tuple(s for s in sizes if s.casefold() != bad.casefold())
                if (regions, sizes) == (task.regions, task.sizes):  # named something we did not send
                    return self._failed(task, answer, run)
                return replace(task, regions=regions, sizes=sizes) if regions and sizes else None
            case Outcome.THROTTLED:
                run.throttled += 1
                learned.parked.add(pair)
                self._park_subscription(pair[0], answer, run, learned)
                return task  # the pair (and its subscription) is parked, so the next reservation picks another
            case Outcome.FORBIDDEN:
                self._park_subscription(pair[0], answer, run, learned)
                _count_error(run, answer)
                return task  # not the request's fault: another subscription may have the role
            case Outcome.UNSUPPORTED_LOCATION:
                learned.url_locations = split_public(answer.locations)[0]
                return self._failed(task, answer, run)
            case Outcome.TRANSIENT:
                return self._failed(task, answer, run)
            case _:
                run.failed_requests += 1
                _count_error(run, answer)
                return None

    @staticmethod
    def _park_subscription(subscription: str, answer: SpsAnswer, run: SpsRun, learned: Learned) -> bool:
        """A 403 parks the subscription for a day; a 429 rests it for the wait Azure named (62 minutes when it
        named none; not at all when it said 0). Returns whether the subscription was parked."""
        if answer.outcome is Outcome.FORBIDDEN:
            run.forbidden_subscriptions.add(subscription)
            learned.park_subscription(subscription, MISSING_ROLE_PARK, MISSING_ROLE)
            log.warning(
                "SPS: subscription %s answered %s (no Compute Recommendations Role?): parked for %s",
                short_subscription(subscription), answer.status, MISSING_ROLE_PARK,
            )
            return True
        if answer.outcome is not Outcome.THROTTLED:
            return False
        rest = PARK_FOR if answer.retry_after is None else timedelta(seconds=answer.retry_after)
        if rest <= timedelta(0):
            return False
        run.rested_subscriptions.add(subscription)
        learned.park_subscription(subscription, rest, THROTTLED)
        return True

    def _failed(self, task: Task, answer: SpsAnswer, run: SpsRun) -> Task | None:
        _count_error(run, answer)
        if task.attempts + 1 < self.max_attempts:
            return replace(task, attempts=task.attempts + 1)
        run.failed_requests += 1
        return None


def _count_error(run: SpsRun, answer: SpsAnswer) -> None:
    # the detail is Azure's error code or a fixed description, never body text (resources/error_text.py)
    key = f"{answer.status or 'no response'} {answer.outcome.value}" + (f" {answer.detail}" if answer.detail else "")
    run.errors[key] = run.errors.get(key, 0) + 1


def _without(task: Task, invalid_regions: Sequence[str], invalid_sizes: Sequence[str]) -> Task | None:
    bad_r = {r.casefold() for r in invalid_regions}
    bad_s = {s.casefold() for s in invalid_sizes}
    regions = tuple(r for r in task.regions if r.casefold() not in bad_r)
    sizes = tuple(s for s in task.sizes if s.casefold() not in bad_s)
    return replace(task, regions=regions, sizes=sizes) if regions and sizes else None
