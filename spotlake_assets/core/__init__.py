"""The pure core: time rules, the S3 key layout, asset names, pandas transforms, SPS planning, DynamoDB item keys
and snapshot checks. No Dagster and no I/O library is imported here (tests/test_layers.py checks)."""
