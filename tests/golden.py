"""The outputs of three consecutive partitions on the local stack, as digests: every S3 object of the write
bucket and every DynamoDB item. `python -m tests.golden` records them to tests/fixtures/; a test compares a
fresh run with the recording, so a refactor that changes any stored byte is caught.
`python -m tests.golden --dynamodb-only` re-records the items only and keeps the recorded objects, whose
deliberate changes tests/test_golden.py lists with their reasons (as for the item shape of issue 11)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from .stack import bucket_state, s3_client, start, table_items

# 23:40 .. 00:00 data times: a desired count of 1 twice, the daily checkpoint and the next day's request pool
PARTITIONS = ["2026-11-26-23:40", "2026-11-26-23:50", "2026-11-27-00:00"]
SEED = 11
FIXTURE = Path(__file__).parent / "fixtures" / "golden_three_partitions.json"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digests(stack) -> dict:
    """{"s3": {key: sha256}, "dynamodb": {"pk|sk": sha256 of the item's canonical JSON}}."""
    s3 = s3_client(stack)
    bucket = stack.settings.write_bucket
    keys = sorted(bucket_state(stack, bucket))
    objects = {key: _digest(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) for key in keys}
    items = {
        f"{item['pk']['S']}|{item['sk']['S']}": _digest(json.dumps(item, sort_keys=True).encode())
        for item in table_items(stack)
    }
    return {"partitions": PARTITIONS, "seed": SEED, "s3": objects, "dynamodb": items}


def record(dynamodb_only: bool = False) -> None:
    from spotlake_assets.local.run import run_partitions
    from spotlake_assets.local.stack import use_stack_environment

    with start(seed=SEED) as stack:
        use_stack_environment(stack)
        report = run_partitions(stack, PARTITIONS)
        if not report.success:
            sys.exit(f"run failed: {report.failures}")
        recording = digests(stack)
    if dynamodb_only:
        recording["s3"] = json.loads(FIXTURE.read_text())["s3"]
    FIXTURE.write_text(json.dumps(recording, indent=1, sort_keys=True) + "\n")
    print(f"recorded {'the DynamoDB items of ' if dynamodb_only else ''}{FIXTURE}")


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--dynamodb-only"]):
        sys.exit("usage: python -m tests.golden [--dynamodb-only]")
    record(dynamodb_only=sys.argv[1:] == ["--dynamodb-only"])
