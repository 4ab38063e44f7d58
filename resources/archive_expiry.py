"""The guard that lets DynamoDB's TTL delete history items only once their month is archived and verified
(docs/design.md "Hot and cold").

Items carry `expires_at` = their time + RETENTION from the day they are written (setting it later would cost a write
per item). What decides whether an item may go is the table's TTL switch: the guard enables TTL only while every
month whose items can expire within GUARD_MARGIN is in the index of verified months, and disables it otherwise,
before such an item's expiry. A month is verified once when it is built, and again when it first becomes due (the
first check may be weeks old by then): a file missing or changed since, or a partition committed since, takes the
month out of the index and TTL stays off. The guard runs after every committed partition and after each month's
archive, so it acts within 10 minutes; the heartbeat alarm (docs/operations.md) says when nothing runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from spotlake_assets.core import archive_keys as ak
from spotlake_assets.core import names

from .archive import ArchiveError, MonthArchive
from .history_table import HistoryTable


@dataclass(frozen=True)
class ExpiryDecision:
    enabled: bool  # TTL after the guard ran
    changed: bool  # the guard switched it
    due: list[str] = field(default_factory=list)  # months whose items may expire within GUARD_MARGIN
    reason: str = ""


def due_months(first_month: str, now: datetime) -> list[str]:
    """Months from `first_month` (the history's) whose earliest item can expire within GUARD_MARGIN of `now`."""
    latest = now.replace(tzinfo=None) + ak.GUARD_MARGIN - ak.RETENTION
    return ak.months_between(first_month, f"{latest:%Y-%m}")


@dataclass
class ExpiryGuard:
    archive: MonthArchive
    history: HistoryTable

    def reconcile(self, now: datetime, *, reverify: bool = False) -> ExpiryDecision:
        """Enable TTL if every due month is verified and its last check is recent (the day before it became due,
        when the archive job checks it again; `reverify`: check such a month now, as that job does), else disable
        it. Nothing is due in the history's first RETENTION - GUARD_MARGIN: no request is sent."""
        due = due_months(self.archive.first_month, now)
        if not due:
            return ExpiryDecision(enabled=False, changed=False, reason="no month can expire yet")
        blocked = self._first_blocked(due, now, reverify)
        want = blocked is None
        current = self.history.time_to_live_enabled()
        if want != current:
            self.history.set_time_to_live(want)
        reason = blocked or f"every due month is verified ({due[0]} .. {due[-1]})"
        return ExpiryDecision(enabled=want, changed=want != current, due=due, reason=reason)

    def _first_blocked(self, due: list[str], now: datetime, reverify: bool) -> str | None:
        verified = self.archive.index().get("months", {})
        for month in due:
            record = verified.get(month)
            if record is None:
                return f"month {month} is not archived and verified: its items must not expire"
            recheck = ak.first_expiry(month) - ak.GUARD_MARGIN - 2 * ak.RECHECK_BEFORE_DUE
            if record["verified_at"] < f"{recheck:%Y-%m-%d %H:%M:%S}":
                if not reverify:
                    return (f"month {month} was last checked {record['verified_at']}, before it became due: "
                            f"materialize {names.ARCHIVE} for {month} to check it again")  # fmt: skip
                try:
                    self.archive.verify(month, now)
                except ArchiveError as exc:
                    self.archive.unverify(month)
                    return f"month {month} failed its check before expiry: {exc}"
        return None
