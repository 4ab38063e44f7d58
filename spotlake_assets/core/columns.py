"""Columns of a dataset row (docs/contract.md "The merge") and how their values are typed.

Plain constants with no pandas import, so that the query side (resources/query_api/) can be packaged for AWS Lambda
with boto3 only. spotlake_assets/core/transforms/state.py re-exports them.
"""

from __future__ import annotations

MISSING_TEXT = "N/A"

ROW_COLUMNS = [
    "InstanceTier", "InstanceType", "Region", "OndemandPrice", "SpotPrice", "Savings", "IF",
    "DesiredCount", "AvailabilityZone", "Score", "Time", "T2", "T3",
]  # fmt: skip
FLOAT_COLUMNS = ["OndemandPrice", "SpotPrice", "Savings", "IF"]
INT_COLUMNS = ["DesiredCount", "Score", "T2", "T3"]
