"""The emulator's time: the settable emulator clock, and the windows that count requests in time.

The emulator clock (wall clock by default; frozen, set or advanced by tests) drives the data epoch and the SPS
hourly limits; the sliding windows of the burst limits (prices per second, Resource Graph per 5 s) count real
monotonic time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class Clock:
    """The emulator clock: a base clock (wall clock by default), optionally frozen, plus an offset."""

    def __init__(self, base: Callable[[], datetime]) -> None:
        self._base = base
        self._frozen: datetime | None = None
        self._offset = timedelta()

    def now(self) -> datetime:
        return (self._frozen or self._base()) + self._offset

    def set(self, t: datetime | None) -> None:
        if t is not None and t.tzinfo is None:
            raise ValueError(f"emulator time must be timezone-aware, got naive {t.isoformat()}")
        self._frozen, self._offset = (t.astimezone(UTC) if t else None), timedelta()

    def advance(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)


class Window:
    """Request times (monotonic seconds) inside a sliding window of `width` seconds."""

    def __init__(self, width: float) -> None:
        self.width = width
        self.times: deque[float] = deque()

    def prune(self, now: float) -> int:
        while self.times and self.times[0] <= now - self.width:
            self.times.popleft()
        return len(self.times)


def densest(times: list[datetime], width: timedelta) -> int:
    """The most of the sorted `times` inside any window of length `width`."""
    best, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= width:
            first += 1
        best = max(best, last - first + 1)
    return best
