"""Every stored byte of three partitions equals the recording made before the graph was rewired
(tests/golden.py): S3 objects of the write bucket and DynamoDB items, compared by digest. What has changed since
on purpose is listed below with its reason; anything else that differs is a regression."""

from __future__ import annotations

import json

from .golden import FIXTURE, PARTITIONS, SEED, digests
from .stack import start, use_stack

# DynamoDB items are re-recorded when their shape changes on purpose (`python -m tests.golden --dynamodb-only`):
# issue 11 grouped the points; issue 16 added `expires_at` (Time + 40 days, the TTL attribute) to points and
# checkpoints. The S3 objects below are the recording's.
# Objects the recording does not hold, each added on purpose since.
ADDED_SINCE = {
    "query-selector/associated/association_azure.json": "the web site's association file (its query form's lists)",
}
# Objects it holds that are no longer written.
REMOVED_SINCE = {
    "latest_data/azure/latest_azure_time.json": "the latest file carries its data time itself (one conditional write)",
}
# Objects whose bytes changed on purpose.
CHANGED_SINCE = {
    **{
        f"dagster/azure/azure_spot_state/{p.replace(':', '-')}.parquet": "a state names the partition it continued"
        for p in PARTITIONS
    },
    # issue 11: points are stored one item per (type, region, Time), so a manifest lists those fewer item keys
    # (the items themselves are re-recorded: expanded back to single points they equal the earlier recording)
    **{
        f"dagster/azure/azure_dynamodb_history/{p.replace(':', '-')}.json": "the manifest lists grouped point items"
        for p in PARTITIONS
    },
    # the manifest of the day's first collection lists its checkpoint items too, so a re-run can remove stale ones
    "dagster/azure/azure_dynamodb_history/2026-11-26-23-50.json": "the manifest lists grouped point items and the "
    "checkpoint items",
}


def test_three_partitions_store_exactly_the_recorded_objects_and_items(monkeypatch):
    from spotlake_assets.local.run import run_partitions

    recorded = json.loads(FIXTURE.read_text())
    with start(seed=SEED) as stack:
        use_stack(stack, monkeypatch)
        report = run_partitions(stack, PARTITIONS)
        assert report.success, report.failures
        now = digests(stack)
    assert set(now["s3"]) - set(recorded["s3"]) == set(ADDED_SINCE)
    assert set(recorded["s3"]) - set(now["s3"]) == set(REMOVED_SINCE)
    changed = {key for key in set(now["s3"]) & set(recorded["s3"]) if now["s3"][key] != recorded["s3"][key]}
    assert changed == set(CHANGED_SINCE)
    assert now["dynamodb"] == recorded["dynamodb"]
