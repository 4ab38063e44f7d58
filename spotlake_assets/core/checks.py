"""Partitioned checks of the merged snapshot (pure: rows in, verdicts out)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .transforms.state import SERIES_KEYS, with_keys

SCORES = {-1, 1, 2, 3}
IF_VALUES = {-1.0, 1.0, 1.5, 2.0, 2.5, 3.0}
MAX_CHANGED_SHARE = 0.5  # of known series, not counting new ones; the emulator drifts ~3%, Azure less

SNAPSHOT_CHECKS = {
    "sources_complete": "Price, IF and SPS were all collected for the partition (else the snapshot is partial)",
    "unique_series": "One row per (InstanceTier, InstanceType, Region, AvailabilityZone, DesiredCount)",
    "score_domain": "Score is one of -1, 1, 2, 3",
    "if_domain": "IF is one of -1, 1, 1.5, 2, 2.5, 3",
    "prices_valid": "OndemandPrice and SpotPrice are non-negative or -1 (missing)",
    "t2_t3_bounds": "0 <= T3 <= T2 <= 50",
    "changed_share_plausible": f"At most {MAX_CHANGED_SHARE:.0%} of the known series changed",
}


def evaluate_snapshot(
    rows: pd.DataFrame, changed: pd.DataFrame, counts: dict[str, int], missing: list[str]
) -> dict[str, tuple[bool, dict[str, Any]]]:
    """name -> (passed, metadata) for every check of SNAPSHOT_CHECKS."""
    duplicates = int(with_keys(rows).duplicated(SERIES_KEYS).sum()) if len(rows) else 0
    bad_score = int((~rows["Score"].isin(SCORES)).sum())
    bad_if = int((~rows["IF"].isin(IF_VALUES)).sum())
    prices = rows[["OndemandPrice", "SpotPrice"]]
    bad_price = int(((prices < 0) & (prices != -1)).any(axis=1).sum())
    bad_t = int((~((rows["T3"] >= 0) & (rows["T3"] <= rows["T2"]) & (rows["T2"] <= 50))).sum())
    known = max(counts.get("series", 0) - counts.get("new_series", 0), 0)
    share = (counts.get("changed_rows", 0) - counts.get("new_series", 0)) / known if known else 0.0
    return {
        "sources_complete": (not missing, {"missing_sources": ", ".join(missing) or "none"}),
        "unique_series": (duplicates == 0, {"duplicate_rows": duplicates}),
        "score_domain": (bad_score == 0, {"rows_outside": bad_score}),
        "if_domain": (bad_if == 0, {"rows_outside": bad_if}),
        "prices_valid": (bad_price == 0, {"rows_outside": bad_price}),
        "t2_t3_bounds": (bad_t == 0, {"rows_outside": bad_t}),
        "changed_share_plausible": (share <= MAX_CHANGED_SHARE, {"changed_share": round(share, 4)}),
    }
