"""An injectable clock and the rule of which partitions can still be collected live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .lockdown import EnvironmentBound
from .settings import Settings


class PartitionNotLiveError(RuntimeError):
    pass


class Clock(EnvironmentBound):
    """`frozen_at` (ISO 8601, UTC) pins "now" for tests and replays; empty means the wall clock.

    Azure serves only the present, so a partition is collected live only from the end of its window
    (its data time) until `max_lateness_minutes` later; older partitions are imported from storage. A run's config
    cannot change either (resources/lockdown.py): a pinned clock would store today's answers as a past partition.
    Code may pin it (local runs and tests replay partitions), so there is no environment value to compare.
    """

    PROTECTED = {
        "frozen_at": "fixed: the wall clock; only local runs and tests pin it, in code",
        "max_lateness_minutes": "fixed: 10",
    }

    frozen_at: str | None = None
    max_lateness_minutes: int = 10

    @classmethod
    def settings_values(cls, settings: Settings) -> dict[str, Any]:
        return {}

    def now(self) -> datetime:
        if self.frozen_at:
            t = datetime.fromisoformat(self.frozen_at)
            return t if t.tzinfo else t.replace(tzinfo=UTC)
        return datetime.now(UTC)

    def is_live(self, data_time: datetime) -> bool:
        """Whether a partition with this data time can be collected from Azure now."""
        now = self.now()
        return data_time <= now <= data_time + timedelta(minutes=self.max_lateness_minutes)

    def check_closed(self, partition_key: str, data_time: datetime) -> None:
        """Fail for a partition whose window has not closed yet: nothing can be collected or imported for it."""
        now = self.now()
        if now < data_time:
            raise PartitionNotLiveError(
                f"partition {partition_key} closes at {data_time:%Y-%m-%d %H:%M} UTC; it is {now:%H:%M:%S} UTC now"
            )
