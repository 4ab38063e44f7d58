"""The emulator's shared state: knobs, clock, issued tokens, quota windows and counters, behind one lock.

One `EmulatorState` belongs to one `AzureEmulator`; every API module reads and changes it only through this
object (and only under its `lock`), so the knobs, the tokens the login issues and the quotas the APIs spend are
seen the same way by all of them.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import drift
from .clock import Clock, Window, densest
from .knobs import FAULT_KINDS, KNOBS, EmulatorConfig

# The collector's own rule is at most 10 calls per pair in any 62 minutes; stats() reports the densest window.
QUOTA_REPORT_WINDOW = timedelta(minutes=62)
PRICE_URLS_KEPT = 5000  # stats() keeps the raw URLs of this many last price requests
SPS_ANSWERS_KEPT = 20000  # and this many last SPS answers (time, subscription, location, status)


class EmulatorState:
    """Everything the four APIs and the admin routes share."""

    def __init__(self, config: EmulatorConfig | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.config.validate()
        self.clock = Clock(clock or (lambda: datetime.now(UTC)))
        self.lock = threading.RLock()
        self.rng = random.Random(self.config.seed)
        self.tokens: dict[str, float] = {}  # access token -> expiry (time.time())
        self.price_window = Window(1.0)
        self.arg_window = Window(5.0)
        self.reset_stats()

    # ---- knobs and clock -------------------------------------------------------------------------

    def configure(self, **knobs: Any) -> None:
        unknown = sorted(set(knobs) - KNOBS)
        if unknown:
            raise ValueError(f"unknown emulator knob(s) {unknown}; known knobs: {sorted(KNOBS)}")
        new = dataclasses.replace(self.config, **knobs)
        new.validate()
        with self.lock:
            if new.seed != self.config.seed:
                self.rng = random.Random(new.seed)
            self.config = new

    def now(self) -> datetime:
        return self.clock.now()

    def set_time(self, t: datetime | None) -> None:
        with self.lock:
            self.clock.set(t)

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.clock.advance(seconds)

    def data_key(self, epoch: int | None = None) -> drift.DataKey:
        """The key of the data served now (or in `epoch`): seed, scale, epoch, drift and overrides."""
        cfg = self.config
        epoch = drift.epoch_of(self.now()) if epoch is None else epoch
        return drift.DataKey.make(cfg.seed, cfg.scale, epoch, cfg.drift_rate, cfg.overrides)

    # ---- counters and quotas ---------------------------------------------------------------------

    def reset_stats(self) -> None:
        with self.lock:
            self.price_window.times.clear()
            self.arg_window.times.clear()
            self.requests: Counter[str] = Counter()
            self.graph_queries: Counter[str] = Counter()  # the exact query text of each Resource Graph request
            self.price_urls: deque[str] = deque(maxlen=PRICE_URLS_KEPT)  # raw path and query of price requests
            self.faults: Counter[str] = Counter({k: 0 for k in FAULT_KINDS})
            self.throttled: Counter[str] = Counter({"prices": 0, "resource_graph": 0, "sps": 0, "sps_subscription": 0})
            self.sps_calls: dict[tuple[str, str], list[datetime]] = {}
            self.sps_answers: deque[dict[str, Any]] = deque(maxlen=SPS_ANSWERS_KEPT)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            calls = {pair: sorted(times) for pair, times in self.sps_calls.items()}
            return {
                "requests": dict(self.requests),
                "resource_graph_queries": dict(self.graph_queries),
                "price_urls": list(self.price_urls),
                "faults": dict(self.faults),
                "throttled": dict(self.throttled),
                "sps_calls": {f"{s}/{loc}": [t.isoformat() for t in ts] for (s, loc), ts in calls.items()},
                "sps_answers": list(self.sps_answers),
                "max_calls_in_any_62_minutes": max(
                    (densest(ts, QUOTA_REPORT_WINDOW) for ts in calls.values()), default=0
                ),
            }
