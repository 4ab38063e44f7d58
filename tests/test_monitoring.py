"""measure() on real allocations, and the legacy monitoring keys and documents."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone

from spotlake_assets.ops.monitoring import measure, monitoring_documents, monitoring_keys

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


def test_rss_samples_are_recorded_every_record_interval() -> None:
    with measure(sample_every_s=0.01, record_every_s=0.1) as m:
        time.sleep(0.35)
        assert m["rss_samples"], "samples are visible while the block runs"
    offsets = [offset for offset, _ in m["rss_samples"]]
    assert offsets[0] == 0.0 and 3 <= len(offsets) <= 5
    assert offsets == sorted(offsets)
    assert all(mib > 0 for _, mib in m["rss_samples"])


def test_measure_fills_the_dict_when_the_block_raises() -> None:
    try:
        with measure() as m:
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert {"duration_s", "rss_mib", "peak_rss_mib", "rss_samples"} <= m.keys()


def test_monitoring_keys_follow_the_legacy_layout_in_utc() -> None:
    t = datetime(2026, 11, 28, 10, 20, tzinfo=UTC)
    assert monitoring_keys(t) == {
        "executionTime": "rawdata/azure/monitoring/executionTime/2026/11/28/10-20.json",
        "memory": "rawdata/azure/monitoring/memory/2026/11/28/10-20.json",
    }
    seoul = t.astimezone(timezone(timedelta(hours=9)))
    assert monitoring_keys(seoul) == monitoring_keys(t) == monitoring_keys(t.replace(tzinfo=None))


def test_monitoring_documents_split_duration_and_memory_deterministically() -> None:
    t = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    measurements = {
        "azure_price_raw": {
            "duration_s": 12.5,
            "rows": 1234,
            "rss_mib": 300.0,
            "peak_rss_mib": 512.3,
            "rss_samples": [(0.0, 250.0), (10.0, 512.3)],
        }
    }
    docs = monitoring_documents(t, measurements)
    keys = monitoring_keys(t)
    assert set(docs) == set(keys.values())
    execution = json.loads(docs[keys["executionTime"]])
    memory = json.loads(docs[keys["memory"]])
    assert execution == {
        "Time": "2026-01-01 00:00:00",
        "measurements": {"azure_price_raw": {"duration_s": 12.5, "rows": 1234}},
    }
    assert memory["measurements"]["azure_price_raw"] == {
        "peak_rss_mib": 512.3,
        "rss_mib": 300.0,
        "rss_samples": [[0.0, 250.0], [10.0, 512.3]],
    }
    assert monitoring_documents(t, measurements) == docs
