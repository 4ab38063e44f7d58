"""The partition merge, one test per rule of docs/contract.md "The merge" (small hand-made frames)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from spotlake_assets.core.timekeys import DESIRED_COUNT_CYCLE
from spotlake_assets.core.transforms.merge import (
    PRICE_COLUMNS,
    SPS_COLUMNS,
    changed_rows,
    merge_snapshot,
    step_below,
)
from spotlake_assets.core.transforms.state import ROW_COLUMNS, ROW_DTYPES, state_to_frame

T0 = datetime(2026, 11, 28, 10, 20, tzinfo=UTC)
REGIONS = {
    "eastus": "US East",
    "westus": "US West",
    "germanywestcentral": "DE West Central",
    "usgovvirginia": "US Gov Virginia",
    "usdodeast": "US DoD East",
    "chinaeast2": "CN East 2",
    "germanycentral": "DE Central",
}


def price_frame(*items: tuple) -> pd.DataFrame:
    """Price rows from (type, region code, on-demand, spot), tier Standard, as the price asset gives them."""
    rows = [
        {
            "InstanceTier": "Standard",
            "InstanceType": size,
            "Region": REGIONS[code],
            "armRegionName": code,
            "OndemandPrice": ondemand,
            "SpotPrice": spot,
            "Savings": None if None in (ondemand, spot) else (ondemand - spot) / ondemand * 100,
        }  # fmt: skip
        for size, code, ondemand, spot in items
    ]
    return pd.DataFrame(rows, columns=PRICE_COLUMNS)


def eviction_frame(*items: tuple) -> pd.DataFrame:
    """IF rows from (type, region code, IF), lower case as Resource Graph gives them."""
    rows = [
        {"InstanceTier": "standard", "InstanceType": s.lower(), "Region": c, "IF": f} for s, c, f in items
    ]
    return pd.DataFrame(rows, columns=["InstanceTier", "InstanceType", "Region", "IF"])


def sps_frame(count: int, *items: tuple) -> pd.DataFrame:
    """SPS rows at `count` from (type, region code, zone, score)."""
    rows = [
        {
            "DesiredCount": count,
            "RegionCodeSPS": code,
            "Region": REGIONS[code],
            "InstanceTypeSPS": f"Standard_{size}",
            "InstanceTier": "Standard",
            "InstanceType": size,
            "AvailabilityZone": zone,
            "Score": score,
            "T3": count if score == 3 else 0,
            "T2": count if score is not None and score >= 2 else 0,
        }  # fmt: skip
        for size, code, zone, score in items
    ]
    return pd.DataFrame(rows, columns=SPS_COLUMNS)


PRICE = price_frame(("D2s_v3", "eastus", 0.1, 0.02), ("D4s_v3", "eastus", 0.2, 0.05))
EVICTION = eviction_frame(("D2s_v3", "eastus", 3.0), ("D4s_v3", "eastus", 2.5))
SPS_1 = sps_frame(1, ("D2s_v3", "eastus", "1", 3), ("D4s_v3", "eastus", "1", 2))


def merge(price=PRICE, eviction=EVICTION, sps=SPS_1, count=1, step=0, state=None):
    return merge_snapshot(price, eviction, sps, count, T0 + timedelta(minutes=10 * step), state)


def cell(rows: pd.DataFrame, size: str, column: str, count: int | None = None, zone: str = "1"):
    """The one value of `column` for (size, zone[, desired count]) in `rows`."""
    match = (rows["InstanceType"] == size) & (rows["AvailabilityZone"] == zone)
    if count is not None:
        match &= rows["DesiredCount"] == count
    values = rows.loc[match, column].tolist()
    assert len(values) == 1, f"{size}/{zone}/{count}: {values}"
    return values[0]


# --- steps 1-4: keys, joins, columns ---


def test_join_keys_are_normalised_and_published_values_keep_price_spelling():
    price = price_frame(("NC24ads_A100_v4", "eastus", 3.673, 0.5))
    eviction = eviction_frame(("NC24ads_A100_v4", " eastus ", 2.0))  # 'standard', 'nc24ads_a100_v4'
    sps = sps_frame(1, ("NC24ads_A100_v4", "eastus", "1", 3)).assign(
        InstanceTier=" STANDARD", InstanceType="nc24ads_a100_v4 ", Region="us east"
    )
    rows = merge(price, eviction, sps).rows
    assert rows[["InstanceTier", "InstanceType", "Region", "IF", "Score"]].values.tolist() == [
        ["Standard", "NC24ads_A100_v4", "US East", 2.0, 3]
    ]


def test_price_x_if_keeps_only_rows_with_a_spot_price():
    price = pd.concat(
        [price_frame(("D2s_v3", "eastus", 0.1, 0.02)), price_frame(("D8s_v3", "eastus", 0.4, None))]
    )
    # neither IF row matches a price row; D8s_v3 has no spot price
    eviction = eviction_frame(("D2s_v3", "westus", 3.0), ("E2s_v5", "eastus", 1.0))
    sps = sps_frame(1, *[(size, "eastus", "1", 3) for size in ("D2s_v3", "D8s_v3", "E2s_v5")])
    rows = merge(price, eviction, sps).rows
    assert rows["InstanceType"].tolist() == ["D2s_v3"]
    assert rows["IF"].tolist() == [-1.0]  # the price row without IF is kept


def test_columns_are_in_the_published_order_with_stable_dtypes():
    result = merge()
    assert list(result.rows.columns) == ROW_COLUMNS == [
        "InstanceTier", "InstanceType", "Region", "OndemandPrice", "SpotPrice", "Savings", "IF",
        "DesiredCount", "AvailabilityZone", "Score", "Time", "T2", "T3",
    ]  # fmt: skip
    assert result.rows.dtypes.astype(str).to_dict() == ROW_DTYPES
    assert set(result.rows["Time"]) == {"2026-11-28 10:20:00"}


# --- steps 5-6: fills and drops ---


def test_missing_values_are_filled():
    price = price_frame(("D2s_v3", "eastus", None, 0.02), ("D4s_v3", "eastus", 0.2, 0.05))
    sps = sps_frame(1, ("D2s_v3", "eastus", "1", None), ("D4s_v3", "eastus", None, 3))
    rows = merge(price, eviction_frame(), sps).rows
    d2 = rows[rows["InstanceType"] == "D2s_v3"].iloc[0]
    assert (d2["OndemandPrice"], d2["Savings"], d2["IF"], d2["Score"], d2["T2"], d2["T3"]) == (
        -1,
        -1,
        -1,
        -1,
        0,
        0,
    )
    assert d2["SpotPrice"] == 0.02
    d4 = rows[rows["InstanceType"] == "D4s_v3"].iloc[0]
    assert (d4["AvailabilityZone"], d4["Score"]) == ("N/A", 3)


def test_rows_without_sps_data_are_dropped():
    sps = sps_frame(1, ("D2s_v3", "eastus", "1", 3), ("D4s_v3", "eastus", None, None))
    result = merge(sps=sps)
    assert result.rows["InstanceType"].tolist() == ["D2s_v3"]  # D4s_v3: price row with no SPS answer at all
    assert len(result.state.workloads) == 1


def test_series_whose_price_and_if_vanished_are_dropped_but_remembered():
    first = merge()
    later = merge(
        price=price_frame(("D4s_v3", "eastus", 0.2, 0.05)), sps=None, count=5, step=1, state=first.state
    )
    assert later.rows["InstanceType"].tolist() == ["D4s_v3"]  # D2s_v3 would have had price and IF all -1
    assert "D2s_v3" in later.state.series["InstanceType"].tolist()


def test_sovereign_regions_are_dropped_on_every_side():
    codes = ["usgovvirginia", "usdodeast", "chinaeast2", "germanycentral", "germanywestcentral"]
    price = price_frame(*[("D2s_v3", code, 0.1, 0.02) for code in codes])
    eviction = eviction_frame(*[("D2s_v3", code, 3.0) for code in codes])
    sps = sps_frame(1, *[("D2s_v3", code, "1", 3) for code in codes])
    result = merge(price, eviction, sps)
    assert result.rows["Region"].tolist() == ["DE West Central"]
    assert result.state.markets["RegionCode"].tolist() == ["germanywestcentral"]
    assert result.state.workloads["Region"].tolist() == ["DE West Central"]


# --- step 7: T2/T3 ---


def test_step_below_follows_the_cycle():
    assert [step_below(c) for c in DESIRED_COUNT_CYCLE] == [0, 1, 5, 10, 15, 20, 25, 30, 35, 40, 45]


# (count, score, expected T2, expected T3) over two and a bit cycles of one workload
T_CYCLE = [
    # cycle 1: High up to 30, Medium to 40, then Low: T3 climbs to 30, T2 to 40 and both hold
    (1, 3, 1, 1), (5, 3, 5, 5), (10, 3, 10, 10), (15, 3, 15, 15), (20, 3, 20, 20), (25, 3, 25, 25),
    (30, 3, 30, 30), (35, 2, 35, 30), (40, 2, 40, 30), (45, 1, 40, 30), (50, 1, 40, 30),
    # cycle 2: scores drop; the step below c caps T: T3 falls to 10 at c=15, T2 to 20 at c=25
    (1, 3, 40, 30), (5, 3, 40, 30), (10, 3, 40, 30), (15, 2, 40, 10), (20, 2, 40, 10), (25, 1, 20, 10),
    (30, 1, 20, 10), (35, 1, 20, 10), (40, 1, 20, 10), (45, 1, 20, 10), (50, 1, 20, 10),
    # cycle 3: Low at count 1 resets both, then High at 5 rises again from 0
    (1, 1, 0, 0), (5, 3, 5, 5),
]  # fmt: skip


def test_t2_t3_carry_across_the_whole_cycle():
    state = None
    for step, (count, score, t2, t3) in enumerate(T_CYCLE):
        sps = sps_frame(count, ("D2s_v3", "eastus", "1", score))
        result = merge(sps=sps, count=count, step=step, state=state)
        state = result.state
        assert (cell(result.rows, "D2s_v3", "T2", count), cell(result.rows, "D2s_v3", "T3", count)) == (
            t2,
            t3,
        ), f"step {step}, count {count}, score {score}"
        assert state.workloads[["T2", "T3"]].values.tolist() == [[t2, t3]]


def test_medium_at_count_one_keeps_t2_and_resets_t3():
    first = merge(sps=sps_frame(1, ("D2s_v3", "eastus", "1", 3)))
    second = merge(sps=sps_frame(5, ("D2s_v3", "eastus", "1", 3)), count=5, step=1, state=first.state)
    third = merge(sps=sps_frame(1, ("D2s_v3", "eastus", "1", 2)), step=2, state=second.state)
    assert third.state.workloads[["T2", "T3"]].values.tolist() == [[5, 0]]


def test_series_at_other_counts_keep_their_own_score_t2_t3():
    first = merge(sps=sps_frame(1, ("D2s_v3", "eastus", "1", 2)))
    second = merge(sps=sps_frame(5, ("D2s_v3", "eastus", "1", 3)), count=5, step=1, state=first.state)
    rows = second.rows
    assert [cell(rows, "D2s_v3", col, 1) for col in ("Score", "T2", "T3")] == [2, 1, 0]
    assert [cell(rows, "D2s_v3", col, 5) for col in ("Score", "T2", "T3")] == [3, 5, 5]
    assert len(second.changed) == 1  # only the series at the partition's count moved


def test_t2_t3_are_per_zone():
    sps = sps_frame(1, ("D2s_v3", "eastus", "1", 3), ("D2s_v3", "eastus", "2", 1))
    rows = merge(sps=sps).rows
    assert (cell(rows, "D2s_v3", "T3", zone="1"), cell(rows, "D2s_v3", "T3", zone="2")) == (1, 0)


# --- step 8: change detection ---


def test_same_values_later_store_nothing():
    first = merge()
    again = merge(step=11, state=first.state)
    assert len(again.rows) == 2 and again.changed.empty
    assert again.counts["changed_rows"] == 0


def test_k_drifted_series_give_k_rows():
    rows = merge().rows
    drifted = rows.copy()
    drifted.loc[0, "SpotPrice"] += 0.001
    drifted.loc[1, "IF"] = 1.0
    assert len(changed_rows(drifted, rows)) == 2
    assert changed_rows(drifted.iloc[[0]], rows)["SpotPrice"].tolist() == [drifted.loc[0, "SpotPrice"]]


@pytest.mark.parametrize("column", ["OndemandPrice", "SpotPrice", "IF", "Score", "T2", "T3"])
def test_each_compared_column_counts(column):
    rows = merge().rows
    drifted = rows.assign(**{column: rows[column] + 1})
    assert len(changed_rows(drifted, rows)) == len(rows)


def test_time_and_savings_are_never_compared():
    rows = merge().rows
    later = rows.assign(Time="2030-01-01 00:00:00", Savings=rows["Savings"] + 1)
    assert changed_rows(later, rows).empty


def test_series_match_case_insensitively():
    rows = merge().rows
    stored = rows.assign(InstanceType=rows["InstanceType"].str.lower(), Region=rows["Region"].str.upper())
    assert changed_rows(rows, stored).empty


def test_floats_compare_after_rounding():
    rows = merge().rows
    noisy = rows.assign(SpotPrice=rows["SpotPrice"] + 1e-9, Savings=rows["Savings"] + 1e-4)
    assert changed_rows(noisy, rows).empty
    assert len(changed_rows(rows.assign(SpotPrice=rows["SpotPrice"] + 1e-6), rows)) == 2


def test_new_series_are_stored_and_counted():
    first = merge(sps=sps_frame(1, ("D2s_v3", "eastus", "1", 3)))
    second = merge(sps=SPS_1, step=1, state=first.state)
    assert second.changed["InstanceType"].tolist() == ["D4s_v3"]
    assert (second.counts["new_series"], second.counts["series"]) == (1, 2)


def test_desired_count_is_part_of_the_series():
    first = merge()
    second = merge(sps=sps_frame(5, ("D2s_v3", "eastus", "1", 3)), count=5, step=1, state=first.state)
    assert second.changed[["InstanceType", "DesiredCount"]].values.tolist() == [["D2s_v3", 5]]
    assert second.counts["new_series"] == 1
    assert len(second.rows) == 3


def test_a_price_change_reaches_every_count_and_zone_at_once():
    first = merge(sps=sps_frame(1, ("D2s_v3", "eastus", "1", 3), ("D2s_v3", "eastus", "2", 3)))
    second = merge(sps=sps_frame(5, ("D2s_v3", "eastus", "1", 3)), count=5, step=1, state=first.state)
    cheaper = price_frame(("D2s_v3", "eastus", 0.1, 0.015))
    third = merge(price=cheaper, sps=sps_frame(10), count=10, step=2, state=second.state)
    assert sorted(zip(third.changed["AvailabilityZone"], third.changed["DesiredCount"], strict=True)) == [
        ("1", 1),
        ("1", 5),
        ("2", 1),
    ]
    assert set(third.changed["SpotPrice"]) == {0.015}
    assert set(third.changed["Time"]) == {"2026-11-28 10:40:00"}


# --- missing sources ---


def test_without_sps_price_and_if_flow_into_known_series():
    first = merge()
    moved = price_frame(
        ("D2s_v3", "eastus", 0.1, 0.03), ("D4s_v3", "eastus", 0.2, 0.05), ("E2s_v5", "eastus", 1, 0.1)
    )
    second = merge(price=moved, sps=None, count=5, step=1, state=first.state)
    assert second.missing_sources == ["sps"]
    assert second.rows["InstanceType"].tolist() == ["D2s_v3", "D4s_v3"]  # nothing invented for E2s_v5
    assert second.rows["DesiredCount"].tolist() == [1, 1]
    assert second.rows["Score"].tolist() == [3, 2]
    assert second.changed["SpotPrice"].tolist() == [0.03]
    pd.testing.assert_frame_equal(second.state.workloads, first.state.workloads)


def test_first_partition_without_sps_has_no_rows():
    result = merge(sps=None)
    assert result.rows.empty and result.missing_sources == ["sps"]
    assert list(result.rows.columns) == ROW_COLUMNS
    assert len(result.state.markets) == 2  # price and IF are still remembered for the next partition


def test_without_if_the_last_known_if_is_carried():
    first = merge()
    moved = price_frame(("D2s_v3", "eastus", 0.1, 0.03), ("D4s_v3", "eastus", 0.2, 0.05))
    second = merge(price=moved, eviction=None, step=1, state=first.state)
    assert second.missing_sources == ["eviction"]
    assert second.rows[["SpotPrice", "IF"]].values.tolist() == [[0.03, 3.0], [0.05, 2.5]]


def test_without_price_the_last_known_prices_are_carried():
    first = merge()
    eviction = eviction_frame(("D2s_v3", "eastus", 1.5), ("D4s_v3", "eastus", 2.0))
    second = merge(price=None, eviction=eviction, step=1, state=first.state)
    assert second.missing_sources == ["price"]
    assert second.rows[["OndemandPrice", "SpotPrice", "IF"]].values.tolist() == [
        [0.1, 0.02, 1.5],
        [0.2, 0.05, 2.0],
    ]


def test_a_market_missing_from_the_eviction_answer_keeps_its_last_if_and_stores_nothing():
    """An eviction answer that misses a market says nothing new about it: no IF -1, no point for it."""
    many = [(f"D{i}s_v3", "eastus", 3.0) for i in range(2, 40)]
    price = price_frame(*((size, region, 0.1, 0.02) for size, region, _ in many))
    first = merge(price=price, eviction=eviction_frame(*many), sps=None, state=None)
    assert first.counts["if_carried"] == 0
    sps = sps_frame(1, *((size, "eastus", "1", 3) for size, _, _ in many))
    first = merge(price=price, eviction=eviction_frame(*many), sps=sps)
    second = merge(price=price, eviction=eviction_frame(*many[1:]), sps=sps, step=1, state=first.state)
    assert second.counts["if_carried"] == 1 and second.missing_sources == []
    assert cell(second.rows, "D2s_v3", "IF") == 3.0
    assert second.changed.empty


def test_an_eviction_answer_missing_many_markets_counts_as_failed():
    first = merge()
    second = merge(eviction=eviction_frame(("D2s_v3", "eastus", 3.0)), step=1, state=first.state)
    assert second.missing_sources == ["eviction"]  # D4s_v3 lost its IF: one of two markets, more than 10%
    assert cell(second.rows, "D4s_v3", "IF") == 2.5  # still its last IF


def test_with_every_source_missing_the_last_snapshot_repeats():
    first = merge()
    second = merge(price=None, eviction=None, sps=None, count=5, step=1, state=first.state)
    assert second.missing_sources == ["price", "eviction", "sps"]
    assert second.rows.drop(columns="Time").equals(first.rows.drop(columns="Time"))
    assert second.changed.empty


# --- determinism and input errors ---


def test_same_inputs_in_any_row_order_give_identical_output():
    def shuffled(frame):
        return frame.sample(frac=1, random_state=7).reset_index(drop=True)

    price = price_frame(
        *[
            (size, code, 0.1 * n, 0.01 * n)
            for n, (size, code) in enumerate(
                [("D2s_v3", "eastus"), ("D4s_v3", "eastus"), ("D2s_v3", "westus"), ("E2s_v5", "westus")],
                start=1,
            )
        ]
    )
    eviction = eviction_frame(("D2s_v3", "eastus", 3.0), ("E2s_v5", "westus", 1.0))
    sps = sps_frame(
        5,
        *[
            (s, c, z, n % 4)
            for n, (s, c, z) in enumerate(
                [
                    (s, c, z)
                    for s, c in [("D2s_v3", "eastus"), ("D4s_v3", "eastus"), ("E2s_v5", "westus")]
                    for z in "123"
                ]
            )
        ],
    )
    base = merge()
    one = merge(price, eviction, sps, count=5, step=1, state=base.state)
    two = merge(shuffled(price), shuffled(eviction), shuffled(sps), count=5, step=1, state=base.state)
    pd.testing.assert_frame_equal(one.rows, two.rows)
    pd.testing.assert_frame_equal(one.changed, two.changed)
    pd.testing.assert_frame_equal(state_to_frame(one.state), state_to_frame(two.state))
    keys = list(
        zip(
            *(one.rows[col].str.casefold() for col in ("InstanceType", "Region", "AvailabilityZone")),
            one.rows["DesiredCount"],
            strict=True,
        )
    )
    assert keys == sorted(keys) and len(keys) == 11


def test_sps_at_another_desired_count_is_refused():
    with pytest.raises(ValueError, match=r"desired counts \[5\].*asks 1"):
        merge(sps=sps_frame(5, ("D2s_v3", "eastus", "1", 3)))


def test_naive_data_time_is_refused():
    with pytest.raises(ValueError, match="no time zone"):
        merge_snapshot(PRICE, EVICTION, SPS_1, 1, datetime(2026, 11, 28, 10, 20), None)


def test_a_source_without_its_columns_is_named():
    with pytest.raises(ValueError, match=r"eviction frame lacks columns \['IF'\]"):
        merge(eviction=EVICTION.drop(columns="IF"))


def test_nullable_string_inputs_merge_like_plain_ones():
    def nullable(frame):  # the price and IF transforms hand over pandas "string" columns
        return frame.astype({col: "string" for col in frame.columns if frame[col].dtype == "str"})

    plain = merge()
    typed = merge(nullable(PRICE), nullable(EVICTION), nullable(SPS_1))
    pd.testing.assert_frame_equal(plain.rows, typed.rows)
