"""An injectable clock and the rule of which partitions can still be collected live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from .lockdown import EnvironmentBound
from .settings import Settings

# The embedded Azure emulator's clock (spotlake_assets/local/emulator/clock.py): in `local` it is Azure's present.
EMULATOR_CLOCK_PATH = "/_emulator/clock"


class ClockError(RuntimeError):
    """The clock a local run follows did not answer."""


class PartitionNotLiveError(RuntimeError):
    pass


class Clock(EnvironmentBound):
    """`frozen_at` (ISO 8601, UTC) pins "now" for tests and replays; empty means the wall clock.

    Azure serves only the present, so a partition is collected live only from the end of its window
    (its data time) until `max_lateness_minutes` later; older partitions are imported from storage. A run's config
    cannot change either (resources/lockdown.py): a pinned clock would store today's answers as a past partition.
    Code may pin it (local runs and tests replay partitions), so there is no environment value to compare.

    In `local`, `follow_url` is the embedded Azure emulator's clock: the emulator plays Azure, so its present is the
    one a run can collect (it follows the wall clock unless a test or the rehearsal sets it). The daemon's run
    launcher reads the same clock (resources/run_launcher.py), so runs and the launch rules agree on what is late.
    """

    PROTECTED = {
        "frozen_at": "fixed: the wall clock; only local runs and tests pin it, in code",
        "max_lateness_minutes": "fixed: 10",
        "follow_url": "fixed: the embedded emulator's clock in local (SPOTLAKE_AZURE_MANAGEMENT_URL), else none",
    }

    frozen_at: str | None = None
    max_lateness_minutes: int = 10
    follow_url: str | None = None

    @classmethod
    def settings_values(cls, settings: Settings) -> dict[str, Any]:
        return {"follow_url": emulator_clock_url(settings)}

    def now(self) -> datetime:
        if self.frozen_at:
            return _aware(datetime.fromisoformat(self.frozen_at))
        if self.follow_url:
            try:
                answer = requests.get(self.follow_url, timeout=5)
                answer.raise_for_status()
                return _aware(datetime.fromisoformat(answer.json()["now"]))
            except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
                raise ClockError(
                    f"the local stack's clock at {self.follow_url} did not answer ({type(exc).__name__}); is the "
                    "local stack (`make dev`, `spotlake local-stack`) running?"
                ) from None
        return datetime.now(UTC)

    def live_until(self, data_time: datetime) -> datetime:
        """When a partition with this data time stops being collectable (Azure serves only the present)."""
        return data_time + timedelta(minutes=self.max_lateness_minutes)

    def is_live(self, data_time: datetime) -> bool:
        """Whether a partition with this data time can be collected from Azure now."""
        now = self.now()
        return data_time <= now <= self.live_until(data_time)

    def check_closed(self, partition_key: str, data_time: datetime) -> None:
        """Fail for a partition whose window has not closed yet: nothing can be collected or imported for it."""
        now = self.now()
        if now < data_time:
            raise PartitionNotLiveError(
                f"partition {partition_key} closes at {data_time:%Y-%m-%d %H:%M} UTC; it is {now:%H:%M:%S} UTC now"
            )


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def emulator_clock_url(settings: Settings) -> str | None:
    """The embedded emulator's clock in `local`; None elsewhere (the wall clock)."""
    if settings.env != "local":
        return None
    return settings.azure_management_url.rstrip("/") + EMULATOR_CLOCK_PATH
