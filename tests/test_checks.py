"""Each check of the merged snapshot passes on good rows and fails on rows built to break it."""

from __future__ import annotations

import pandas as pd
import pytest

from spotlake_assets.core.checks import SNAPSHOT_CHECKS, evaluate_snapshot
from spotlake_assets.core.transforms.state import ROW_COLUMNS


def good_rows() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ["Standard", "D2s_v3", "US East", 0.1, 0.02, 80.0, 3.0, 5, "1", 3, "2026-11-28 10:20:00", 5, 5],
            ["Standard", "D2s_v3", "US East", 0.1, 0.02, 80.0, 3.0, 5, "2", 2, "2026-11-28 10:20:00", 5, 0],
            ["Standard", "E4s_v5", "EU West", -1.0, 0.05, -1.0, -1.0, 5, "Single", 1, "2026-11-28 10:20:00", 0, 0],
        ],
        columns=ROW_COLUMNS,
    )


COUNTS = {"series": 100, "new_series": 0, "changed_rows": 3}


def verdicts(rows: pd.DataFrame, counts=COUNTS, missing=()) -> dict[str, bool]:
    return {name: passed for name, (passed, _) in evaluate_snapshot(rows, rows, counts, list(missing)).items()}


def test_good_rows_pass_every_check():
    assert verdicts(good_rows()) == dict.fromkeys(SNAPSHOT_CHECKS, True)


def broken(column: str, row: int, value) -> pd.DataFrame:
    rows = good_rows()
    rows[column] = rows[column].astype(object)
    rows.at[row, column] = value
    return rows


@pytest.mark.parametrize(
    ("check", "rows", "counts", "missing"),
    [
        ("sources_complete", good_rows(), COUNTS, ["sps"]),
        ("unique_series", pd.concat([good_rows(), good_rows().iloc[[0]]], ignore_index=True), COUNTS, []),
        # the same series spelled in another case is the same series
        ("unique_series", pd.concat([good_rows(), broken("InstanceType", 0, "d2S_V3").iloc[[0]]]), COUNTS, []),
        ("score_domain", broken("Score", 0, 4), COUNTS, []),
        ("score_domain", broken("Score", 1, 0), COUNTS, []),
        ("if_domain", broken("IF", 0, 2.7), COUNTS, []),
        ("prices_valid", broken("SpotPrice", 0, -0.5), COUNTS, []),
        ("prices_valid", broken("OndemandPrice", 2, -2.0), COUNTS, []),
        ("t2_t3_bounds", broken("T3", 1, 6), COUNTS, []),  # T3 above T2
        ("t2_t3_bounds", broken("T2", 0, 55), COUNTS, []),
        ("t2_t3_bounds", broken("T3", 2, -1), COUNTS, []),
        ("changed_share_plausible", good_rows(), {"series": 100, "new_series": 10, "changed_rows": 61}, []),
    ],
)
def test_each_check_fails_on_rows_built_to_break_it(check, rows, counts, missing):
    result = verdicts(rows.reset_index(drop=True), counts, missing)
    assert result[check] is False
    assert [name for name, passed in result.items() if not passed] == [check]


def test_new_series_do_not_count_as_changes():
    # 60 new series and 10 changes of 100 known ones: 10% changed, plausible
    assert verdicts(good_rows(), {"series": 160, "new_series": 60, "changed_rows": 70})["changed_share_plausible"]
