"""SPS request packing: every pair covered, limits kept, deterministic, and fewer calls than the baseline."""

from __future__ import annotations

import random

import pytest

from benchmarks.sps_packing import synthetic_pairs
from spotlake_assets.core.sps.packing import (
    Request,
    baseline_requests,
    lower_bound,
    pack_requests,
    packing_report,
    uncovered_pairs,
)


def random_pairs(rng: random.Random) -> list[tuple[str, str]]:
    regions = [f"r{i:02d}" for i in range(rng.randint(1, 20))]
    sizes = [f"Standard_S{i:03d}" for i in range(rng.randint(1, 40))]
    density = rng.random()
    return [(r, s) for r in regions for s in sizes if rng.random() < density]


def assert_valid(requests: list[Request], pairs, max_regions: int, max_sizes: int) -> None:
    assert uncovered_pairs(requests, pairs) == set()
    assert requests == sorted(requests)
    assert len(set(requests)) == len(requests)
    for q in requests:
        assert 1 <= len(q.regions) <= max_regions and 1 <= len(q.sizes) <= max_sizes
        assert list(q.regions) == sorted(set(q.regions)) and list(q.sizes) == sorted(set(q.sizes))


def test_random_inputs_are_covered_within_limits_and_never_worse_than_baseline():
    rng = random.Random(20240601)
    for _ in range(150):
        pairs = random_pairs(rng)
        max_regions, max_sizes = rng.randint(1, 8), rng.randint(1, 5)
        packed = pack_requests(pairs, max_regions, max_sizes)
        baseline = baseline_requests(pairs, max_regions, max_sizes)
        assert_valid(packed, pairs, max_regions, max_sizes)
        assert_valid(baseline, pairs, max_regions, max_sizes)
        assert lower_bound(pairs, max_regions, max_sizes) <= len(packed) <= len(baseline)


def test_same_pairs_in_any_order_give_the_same_requests():
    pairs = synthetic_pairs(7, n_regions=20, n_sizes=80)
    shuffled = pairs[::-1] + pairs[:10]  # reversed, with repeats
    random.Random(3).shuffle(shuffled)
    assert pack_requests(shuffled) == pack_requests(pairs)
    assert baseline_requests(shuffled) == baseline_requests(pairs)


def test_realistic_pattern_needs_clearly_fewer_calls_than_baseline():
    for seed in (1, 2):
        pairs = synthetic_pairs(seed, n_regions=30, n_sizes=200)
        report = packing_report(pairs)
        assert report["pairs"] == len(set(pairs))
        assert report["packed_requests"] <= 0.85 * report["baseline_requests"]
        assert report["packed_requests"] >= report["lower_bound"]


def test_known_small_cases():
    # A full 2 x 2 block is one request.
    block = [(r, s) for r in ("westus", "eastus") for s in ("Standard_B1s", "Standard_A1")]
    assert pack_requests(block) == [Request(("eastus", "westus"), ("Standard_A1", "Standard_B1s"))]
    # One size in 9 regions takes two calls.
    wide = [(f"r{i}", "Standard_D2s_v3") for i in range(9)]
    packed = pack_requests(wide)
    assert len(packed) == 2
    assert sorted(r for q in packed for r in q.regions) == sorted(f"r{i}" for i in range(9))
    assert pack_requests([]) == [] and baseline_requests([]) == []


def test_packing_beats_baseline_where_region_chunks_split_families():
    # Family X lives in regions a0..a7, family Y in b0..b7; a0..a3 and b0..b3 also offer one local size each.
    # The baseline chunks regions by offer count, mixing a's and b's; packing keeps families together.
    pairs = [(f"a{i}", f"Standard_X{j}") for i in range(8) for j in range(5)]
    pairs += [(f"b{i}", f"Standard_Y{j}") for i in range(8) for j in range(5)]
    pairs += [(r, f"Standard_L_{r}") for r in [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)]]
    packed = pack_requests(pairs)
    assert_valid(packed, pairs, 8, 5)
    assert len(packed) == 4 < len(baseline_requests(pairs))


def test_baseline_chunks_regions_by_offer_count_then_sizes_by_five():
    pairs = [("big", f"Standard_S{i}") for i in range(7)] + [("small", "Standard_S0")]
    assert baseline_requests(pairs, max_regions=1) == [
        Request(("big",), tuple(f"Standard_S{i}" for i in range(5))),
        Request(("big",), ("Standard_S5", "Standard_S6")),
        Request(("small",), ("Standard_S0",)),
    ]


@pytest.mark.parametrize("limits", [(0, 5), (8, 0)])
def test_limits_below_one_are_refused(limits):
    with pytest.raises(ValueError, match="max_regions and max_sizes"):
        pack_requests([("eastus", "Standard_A1")], *limits)
