"""measure() on real allocations."""

from __future__ import annotations

import time

from spotlake_assets.monitoring import measure, run_metadata

MIB = 2**20


def test_peak_rss_sees_a_freed_allocation_and_duration_is_wall_time() -> None:
    with measure() as m:
        block = b"\x01" * (200 * MIB)  # filled, so the pages are really resident (bytes(n) would be lazy)
        time.sleep(0.5)  # a couple of 0.2 s samples while it is held
        del block
        time.sleep(0.1)
    assert m["peak_rss_mib"] - m["rss_mib"] > 150
    assert m["peak_rss_mib"] >= m["rss_mib"] > 0
    assert 0.6 <= m["duration_s"] < 5


def test_measure_fills_the_dict_when_the_block_raises() -> None:
    try:
        with measure() as m:
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert set(run_metadata(m)) == {"duration_s", "rss_mib", "peak_rss_mib"}
