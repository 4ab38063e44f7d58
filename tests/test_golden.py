"""Every stored byte of three partitions equals the recording made before the graph was rewired
(tests/golden.py): S3 objects of the write bucket and DynamoDB items, compared by digest."""

from __future__ import annotations

import json

from .golden import FIXTURE, PARTITIONS, SEED, digests
from .stack import start, use_stack

# Objects the recording (made before the graph was rewired) does not hold, each added on purpose since.
ADDED_SINCE = {
    "query-selector/associated/association_azure.json": "the web site's association file (its query form's lists)",
}


def test_three_partitions_store_exactly_the_recorded_objects_and_items(monkeypatch):
    from spotlake_assets.local.run import run_partitions

    recorded = json.loads(FIXTURE.read_text())
    with start(seed=SEED) as stack:
        use_stack(stack, monkeypatch)
        report = run_partitions(stack, PARTITIONS)
        assert report.success, report.failures
        now = digests(stack)
    assert sorted(now["s3"]) == sorted([*recorded["s3"], *ADDED_SINCE])
    changed = sorted(key for key in recorded["s3"] if now["s3"][key] != recorded["s3"][key])
    assert changed == []
    assert sorted(now["dynamodb"]) == sorted(recorded["dynamodb"])
    assert [k for k in now["dynamodb"] if now["dynamodb"][k] != recorded["dynamodb"][k]] == []
