"""The merge state: canonical frames, one Parquet-friendly frame, and applying stored changes."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from spotlake_assets.core.transforms.state import (
    MARKET_COLUMNS,
    ROW_COLUMNS,
    ROW_DTYPES,
    STATE_FRAME_COLUMNS,
    WORKLOAD_COLUMNS,
    apply_changes,
    empty_state,
    make_state,
    series_key,
    state_from_frame,
    state_to_frame,
)


def row(
    size: str, zone: str, count: int, spot: float = 0.02, score: int = 3, time: str = "2026-11-28 10:20:00"
):
    return {
        "InstanceTier": "Standard", "InstanceType": size, "Region": "US East", "OndemandPrice": 0.1,
        "SpotPrice": spot, "Savings": 80.0, "IF": 3.0, "DesiredCount": count, "AvailabilityZone": zone,
        "Score": score, "Time": time, "T2": count, "T3": count,
    }  # fmt: skip


def sample_state():
    series = pd.DataFrame([row("D4s_v3", "1", 1), row("D2s_v3", "2", 5), row("D2s_v3", "1", 5)])
    workloads = pd.DataFrame(
        [["Standard", "D2s_v3", "US East", "1", 5, 5], ["Standard", "D4s_v3", "US East", "1", 1, 0]],
        columns=WORKLOAD_COLUMNS,
    )
    markets = pd.DataFrame(
        [["Standard", "D2s_v3", "US East", "eastus", float("nan"), 0.02, float("nan"), 3.0]],
        columns=MARKET_COLUMNS,
    )
    return make_state(series, workloads, markets)


def assert_states_equal(left, right):
    for part in ("series", "workloads", "markets"):
        pd.testing.assert_frame_equal(getattr(left, part), getattr(right, part))


def test_series_key_strips_case_folds_and_names_missing():
    values = pd.Series([" NC24ads_A100_v4 ", "nc24ads_a100_v4", None, "Straße"])
    assert series_key(values).tolist() == ["nc24ads_a100_v4", "nc24ads_a100_v4", "n/a", "strasse"]


def test_empty_state_has_stable_columns_and_dtypes():
    state = empty_state()
    assert list(state.series.columns) == ROW_COLUMNS and state.series.empty
    assert state.series.dtypes.astype(str).to_dict() == ROW_DTYPES
    assert list(state.workloads.columns) == WORKLOAD_COLUMNS
    assert list(state.markets.columns) == MARKET_COLUMNS


def test_make_state_sorts_by_normalised_key():
    state = sample_state()
    assert state.series[["InstanceType", "AvailabilityZone", "DesiredCount"]].values.tolist() == [
        ["D2s_v3", "1", 5],
        ["D2s_v3", "2", 5],
        ["D4s_v3", "1", 1],
    ]


def test_duplicate_series_key_is_refused_with_the_key():
    series = pd.DataFrame([row("D2s_v3", "1", 5), row("d2s_v3 ", "1", 5)])
    with pytest.raises(ValueError, match="duplicate key .*'d2s_v3'"):
        make_state(series, empty_state().workloads, empty_state().markets)


@pytest.mark.parametrize("make", [sample_state, empty_state])
def test_state_round_trips_through_one_parquet_frame(make):
    state = make()
    frame = state_to_frame(state)
    assert list(frame.columns) == STATE_FRAME_COLUMNS
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    restored = state_from_frame(pd.read_parquet(io.BytesIO(buffer.getvalue())))
    assert_states_equal(restored, state)


def test_an_unknown_market_price_stays_unknown_in_the_frame():
    frame = state_to_frame(sample_state())
    assert pd.isna(
        state_from_frame(frame).markets.loc[0, "OndemandPrice"]
    )  # not -1: that is a published fill


def test_state_frame_is_the_same_for_the_same_state():
    pd.testing.assert_frame_equal(state_to_frame(sample_state()), state_to_frame(sample_state()))


def test_state_frame_without_a_column_is_named():
    with pytest.raises(ValueError, match=r"lacks columns \['T3'\]"):
        state_from_frame(state_to_frame(sample_state()).drop(columns="T3"))


def test_state_frame_with_an_unknown_kind_is_refused():
    frame = state_to_frame(sample_state())
    frame.loc[0, "Kind"] = "mystery"
    with pytest.raises(ValueError, match=r"unknown Kind values \['mystery'\]"):
        state_from_frame(frame)


def test_apply_changes_replaces_matching_series_and_adds_new_ones():
    state = sample_state()
    changed = pd.DataFrame(
        [
            row("d2s_V3", "1", 5, spot=0.03, time="2026-11-28 10:30:00"),  # same series, other spelling
            row("D2s_v3", "1", 10, time="2026-11-28 10:30:00"),  # new series: desired count differs
        ]
    )
    after = apply_changes(state, changed)
    assert after.series[
        ["InstanceType", "AvailabilityZone", "DesiredCount", "SpotPrice", "Time"]
    ].values.tolist() == [
        ["d2s_V3", "1", 5, 0.03, "2026-11-28 10:30:00"],
        ["D2s_v3", "1", 10, 0.02, "2026-11-28 10:30:00"],
        ["D2s_v3", "2", 5, 0.02, "2026-11-28 10:20:00"],
        ["D4s_v3", "1", 1, 0.02, "2026-11-28 10:20:00"],
    ]
    assert after.workloads is state.workloads and after.markets is state.markets


def test_apply_no_changes_keeps_the_series():
    state = sample_state()
    after = apply_changes(state, state.series.iloc[0:0])
    pd.testing.assert_frame_equal(after.series, state.series)
