"""The fast merge equals the frozen oracle (tests/oracle_merge.py, the merge as it was before the rewrite):
same rows, changes and state, and the same stored Parquet bytes, partition after partition over two and a bit
desired-count cycles of small-scale emulator data, with drift, missing sources, new and vanished series, other
spellings, repeated and no-data SPS answers, sovereign rows and a size without a tier."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spotlake_assets.core.timekeys import DESIRED_COUNT_CYCLE
from spotlake_assets.core.transforms import merge as fast
from spotlake_assets.core.transforms import state as fast_state
from spotlake_assets.local.snapshots import price_table, raw_snapshots, sps_rows

from . import oracle_merge as oracle

DAY = datetime(2026, 11, 27, tzinfo=UTC)
SEED = 5
DRIFT = 0.15  # five times the default, so that every partition has changes of every kind
PARTITIONS = 25  # two whole cycles and three more partitions
LATE_SIZES = ("Standard_F2s_v2", "Standard_E8as_v5")  # outside the SPS pool until partition LATE
LATE = 13
VANISHED = ("Standard_D4s_v3", range(6, 10))  # listed by neither price nor IF in these partitions
MISSING = {3: {"price"}, 4: {"eviction"}, 7: {"sps"}, 15: {"price", "eviction", "sps"}, 16: {"price", "eviction"}}


def parquet(frame: pd.DataFrame, row_group_size: int | None = None) -> bytes:
    """The IO manager's encoding (resources/io_manager.frame_to_parquet); small row groups read back as columns of
    several Arrow chunks, as large stored states do."""
    sink = pa.BufferOutputStream()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, sink, compression="zstd", row_group_size=row_group_size)
    return sink.getvalue().to_pybytes()


def unparquet(data: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(data)).to_pandas()


def odd_rows(step: int, price: pd.DataFrame, eviction: pd.DataFrame, sps: pd.DataFrame):
    """The awkward cases a real partition can hold, planted on some partitions."""
    if step in VANISHED[1]:
        gone = VANISHED[0].split("_", 1)[1]
        price = price[price["InstanceType"] != gone]
        eviction = eviction[eviction["InstanceType"].str.casefold() != gone.casefold()]
    if step % 5 == 2:  # another spelling of keys on the SPS side, and padded on the price side
        upper = sps.index % 3 == 0
        sps = sps.assign(
            InstanceType=sps["InstanceType"].where(~upper, sps["InstanceType"].str.upper()),
            Region=sps["Region"].where(~upper, " " + sps["Region"].str.lower()),
        )
        price = price.assign(InstanceTier=price["InstanceTier"].where(price.index % 4 != 0, " standard "))
    if step % 4 == 1:  # a workload answered twice, with another score; and an answer with no SPS data
        twice = sps.iloc[:5].assign(Score=sps["Score"].iloc[:5].map({3: 1, 2: 3, 1: 2, -1: 2}))
        no_data = sps.iloc[5:8].assign(Score=-1, AvailabilityZone=None)
        sps = pd.concat([sps, twice, no_data], ignore_index=True)
    if step % 6 == 0:  # a sovereign answer, and a size whose name has no tier
        sovereign = sps.iloc[:2].assign(RegionCodeSPS="usgovvirginia", Region="US Gov Virginia")
        sps = pd.concat([sps, sovereign], ignore_index=True)
        tierless = price.iloc[:1].assign(InstanceTier=None, InstanceType="Tierless9")
        price = pd.concat([price, tierless], ignore_index=True)
    if step % 3 == 0:  # markets listed twice in other spellings and prices; IF listed twice
        head = price.iloc[:6].reset_index(drop=True)
        spot, ondemand, code = head["SpotPrice"], head["OndemandPrice"], head["armRegionName"]
        twice = head.assign(
            InstanceType=head["InstanceType"].str.lower(),
            # same spot and no on-demand; a full tie; lower spot but higher on-demand; lower on-demand;
            # higher spot; a tie up to the region code
            SpotPrice=spot * [1, 1, 0.9, 1, 1.1, 1],
            OndemandPrice=ondemand * [float("nan"), 1, 1.2, 0.8, 1, 1],
            armRegionName=[code[0], code[1].upper(), code[2], code[3], code[4], code[5] + "x"],
        )
        lower = eviction["InstanceType"].iloc[:4].str.upper()
        rates = eviction.iloc[:4].assign(InstanceType=lower, IF=[1.0, 3.0, 2.0, 2.0])
        price, eviction = pd.concat([price, twice], ignore_index=True), pd.concat([eviction, rates], ignore_index=True)
    # the merge must not depend on row order
    return (
        frame.sample(frac=1, random_state=step).reset_index(drop=True) for frame in (price, eviction, sps)
    )


def partition_inputs(step: int, pool_price: pd.DataFrame):
    t = DAY + timedelta(minutes=10 * step)
    count = DESIRED_COUNT_CYCLE[step % len(DESIRED_COUNT_CYCLE)]
    raw = raw_snapshots(SEED, "small", t, count, pool_price, drift_rate=DRIFT)
    sps = raw.sps
    if step >= LATE:  # the pool grows: these sizes' workloads are new series in the second cycle
        late_pool = pool_price[pool_price["InstanceType"].isin([s.split("_", 1)[1] for s in LATE_SIZES])]
        sps = pd.concat([sps, sps_rows(SEED, "small", t, count, late_pool, drift_rate=DRIFT)], ignore_index=True)
    price, eviction, sps = odd_rows(step, raw.price, raw.eviction, sps)
    sources = {"price": price, "eviction": eviction, "sps": sps}
    for name in MISSING.get(step, ()):
        sources[name] = None
    return sources, count, t


@pytest.fixture(scope="module")
def cycles():
    """Inputs of every partition, the day's pool without the late sizes."""
    pool_price = price_table(SEED, "small", DAY, drift_rate=DRIFT)
    pool_price = pool_price[~pool_price["InstanceType"].isin([s.split("_", 1)[1] for s in LATE_SIZES])]
    return [partition_inputs(step, pool_price) for step in range(PARTITIONS)]


def assert_same_state(new, old) -> None:
    for part in ("series", "workloads", "markets"):
        pd.testing.assert_frame_equal(getattr(new, part), getattr(old, part), check_exact=True, obj=part)
    new_frame, old_frame = fast_state.state_to_frame(new), oracle.state_to_frame(old)
    pd.testing.assert_frame_equal(new_frame, old_frame, check_exact=True)
    assert parquet(new_frame) == parquet(old_frame)


def with_carried_if(eviction, state):
    """The oracle predates the rule that a market missing from the eviction answer keeps its last IF (merge.py
    `_carry_if`): give it those markets' last IF as answered rows, which is what the rule means."""
    if eviction is None or state is None:
        return eviction
    had = state.markets[state.markets["IF"].notna()]
    answered = set(zip(eviction["InstanceTier"].fillna("N/A").str.strip().str.casefold(),
                       eviction["InstanceType"].str.strip().str.casefold(),
                       eviction["Region"].str.strip().str.casefold(), strict=True))  # fmt: skip
    keys = zip(had["InstanceTier"].str.strip().str.casefold(), had["InstanceType"].str.strip().str.casefold(),
               had["RegionCode"].str.strip().str.casefold(), strict=True)  # fmt: skip
    lost = had[[key not in answered for key in keys]]
    carried = lost.rename(columns={"RegionCode": "_code"})[["InstanceTier", "InstanceType", "_code", "IF"]]
    carried = carried.rename(columns={"_code": "Region"})
    return pd.concat([eviction, carried.astype(eviction.dtypes.to_dict())], ignore_index=True)


def test_fast_merge_equals_the_oracle_over_whole_cycles(cycles):
    new_state = old_state = None
    seen = {"new_series": 0, "no_new_series": 0, "changed_known": 0, "vanished_rows": 0, "missing": 0}
    for step, (sources, count, t) in enumerate(cycles):
        args = (sources["price"], sources["eviction"], sources["sps"], count, t)
        carried = with_carried_if(sources["eviction"], old_state)
        old = oracle.merge_snapshot(args[0], carried, *args[2:], old_state)
        new = fast.merge_snapshot(*args, new_state)
        for name in ("rows", "changed"):
            pd.testing.assert_frame_equal(getattr(new, name), getattr(old, name), check_exact=True, obj=name)
            assert parquet(getattr(new, name)) == parquet(getattr(old, name)), (step, name)
        new_counts = {k: v for k, v in new.counts.items() if k != "if_carried"}
        old_counts = {**old.counts, "eviction_rows": new.counts["eviction_rows"]}  # the carried rows are not served
        assert (new_counts, [m for m in new.missing_sources if m != "eviction" or args[1] is None]) == (
            old_counts, old.missing_sources
        ), step
        assert_same_state(new.state, old.state)
        # the stored state is what the next partition reads: chain one side through Parquet, like production
        old_state = old.state
        new_state = fast_state.state_from_frame(unparquet(parquet(fast_state.state_to_frame(new.state), 700)))
        assert_same_state(new_state, oracle.state_from_frame(unparquet(parquet(oracle.state_to_frame(old.state)))))

        if step >= len(DESIRED_COUNT_CYCLE):  # both ways of updating the stored series: with and without new ones
            seen["new_series"] += new.counts["new_series"]
            seen["no_new_series"] += new.counts["new_series"] == 0
        seen["changed_known"] += new.counts["changed_rows"] - new.counts["new_series"]
        seen["vanished_rows"] += new.counts["series"] - new.counts["rows"]
        seen["missing"] += len(new.missing_sources)
    # the scenario did exercise what it claims
    assert all(seen.values()), seen


def test_changed_rows_and_apply_changes_equal_the_oracle(cycles):
    state = None
    for step, (sources, count, t) in enumerate(cycles[:14]):
        result = oracle.merge_snapshot(sources["price"], sources["eviction"], sources["sps"], count, t, state)
        if state is not None:
            shuffled = result.rows.sample(frac=1, random_state=step)
            pd.testing.assert_frame_equal(
                fast.changed_rows(shuffled, state.series), oracle.changed_rows(shuffled, state.series)
            )
            pd.testing.assert_frame_equal(
                fast_state.apply_changes(state, result.changed.sample(frac=1, random_state=step)).series,
                oracle.apply_changes(state, result.changed).series,
            )
        state = result.state


def test_a_repeated_series_key_is_refused_like_the_oracle(cycles):
    sources, count, t = cycles[0]
    state = oracle.merge_snapshot(sources["price"], sources["eviction"], sources["sps"], count, t, None).state
    respelled = state.series.iloc[[1]].assign(InstanceType=lambda d: " " + d["InstanceType"].str.upper())
    twice = pd.concat([state.series.iloc[:3], respelled])
    with pytest.raises(ValueError) as old:
        oracle.make_state(twice, state.workloads, state.markets)
    with pytest.raises(ValueError) as new:
        fast_state.make_state(twice, state.workloads, state.markets)
    assert str(new.value) == str(old.value)
    with pytest.raises(ValueError) as new_apply:
        fast_state.apply_changes(state, twice)
    with pytest.raises(ValueError) as old_apply:
        oracle.apply_changes(state, twice)
    assert str(new_apply.value) == str(old_apply.value)
