"""One partition's SPS collection: reserve quota, call, learn, retry on other pairs, stop when quota runs out.

Each batch of calls is reserved in the persisted rotation state (a conditional write) *before* it is sent, so two
runs at once never spend the same pair twice beyond its limit; what a batch learned (invalid regions and sizes,
throttled pairs) is written with the next reservation. Nothing here waits for quota: when no pair is free, the
remaining requests are counted as skipped and the partition is materialized with what it has.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from spotlake_assets.core.sps.packing import Request
from spotlake_assets.core.sps.rotation import (
    Pair,
    RotationState,
    learn_invalid_region,
    learn_invalid_size,
    park,
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
    url_locations: tuple[str, ...] = ()

    def apply(self, state: RotationState, now: datetime) -> RotationState:
        for region in sorted(self.regions - set(state.invalid_regions)):
            state = learn_invalid_region(state, region)
        for size in sorted(self.sizes - set(state.invalid_sizes)):
            state = learn_invalid_size(state, size)
        for pair in sorted(self.parked):
            state = park(state, pair, now)
        if self.url_locations:
            state = set_url_locations(state, self.url_locations)
        return state


@dataclass
class SpsRun:
    answers: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    retries: int = 0
    throttled: int = 0
    skipped_requests: int = 0
    failed_requests: int = 0
    learned_regions: set[str] = field(default_factory=set)
    learned_sizes: set[str] = field(default_factory=set)
    known_invalid_regions: tuple[str, ...] = ()  # persisted before this run (its requests left them out)
    known_invalid_sizes: tuple[str, ...] = ()
    pairs_used: set[Pair] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)  # "status detail" -> count, for metadata


@dataclass
class SpsCollector:
    client: SpsClient
    state: SpsStateStore
    subscriptions: Sequence[str]
    clock: Callable[[], datetime]
    workers: int = 16
    max_attempts: int = 5
    deadline_seconds: float = 420.0  # the partition's run must end well inside its 10 minutes
    sleep: Callable[[float], None] = time.sleep
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def url_locations(self, current: RotationState) -> tuple[str, ...]:
        """The usable URL locations: learned ones, else discovered from Azure's error message and persisted."""
        if current.url_locations:
            return current.url_locations
        for subscription in self.subscriptions[:3]:
            for _ in range(self.max_attempts):
                found = self.client.discover_locations(subscription)
                if found:
                    discovered = Learned(url_locations=tuple(found))
                    self.state.update(lambda s, d=discovered: (d.apply(s, self.clock()), None))
                    return tuple(sorted(found))
        raise SpsCollectionError("could not discover the SPS URL locations (no 'supported locations are' answer)")

    def collect(self, requests: Sequence[Request], desired_count: int) -> SpsRun:
        if not self.subscriptions:
            raise SpsCollectionError("no Azure subscriptions configured for SPS (AZURE_SUBSCRIPTIONS / AzureAuth)")
        current = self.state.load()
        locations = self.url_locations(current)
        pending = deque(
            t
            for t in (
                _without(Task(r.regions, r.sizes), current.invalid_regions, current.invalid_sizes) for r in requests
            )
            if t is not None
        )
        run = SpsRun(known_invalid_regions=current.invalid_regions, known_invalid_sizes=current.invalid_sizes)
        learned = Learned()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sps") as pool:
            while pending and time.monotonic() - started < self.deadline_seconds:
                want = min(len(pending), self.workers * 2)
                to_apply, learned = learned, Learned()

                def reserve_batch(
                    state: RotationState, to_apply: Learned = to_apply, want: int = want
                ) -> tuple[RotationState, list[Pair]]:
                    now = self.clock()
                    return reserve(to_apply.apply(state, now), want, now, self.subscriptions, locations)

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
        if learned.regions or learned.sizes or learned.parked or learned.url_locations:
            final = learned
            self.state.update(lambda s: (final.apply(s, self.clock()), None))
        return run

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
                return task  # the pair is parked, so the next reservation picks another
            case Outcome.UNSUPPORTED_LOCATION:
                learned.url_locations = answer.locations
                return self._failed(task, answer, run)
            case Outcome.TRANSIENT:
                return self._failed(task, answer, run)
            case _:
                run.failed_requests += 1
                _count_error(run, answer)
                return None

    def _failed(self, task: Task, answer: SpsAnswer, run: SpsRun) -> Task | None:
        _count_error(run, answer)
        if task.attempts + 1 < self.max_attempts:
            return replace(task, attempts=task.attempts + 1)
        run.failed_requests += 1
        return None


def _count_error(run: SpsRun, answer: SpsAnswer) -> None:
    key = f"{answer.status or 'no response'} {answer.outcome.value}"
    run.errors[key] = run.errors.get(key, 0) + 1


def _without(task: Task, invalid_regions: Sequence[str], invalid_sizes: Sequence[str]) -> Task | None:
    bad_r = {r.casefold() for r in invalid_regions}
    bad_s = {s.casefold() for s in invalid_sizes}
    regions = tuple(r for r in task.regions if r.casefold() not in bad_r)
    sizes = tuple(s for s in task.sizes if s.casefold() not in bad_s)
    return replace(task, regions=regions, sizes=sizes) if regions and sizes else None
