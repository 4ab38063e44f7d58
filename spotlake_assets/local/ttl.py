"""DynamoDB's TTL deletions for the local stack: moto stores a table's TTL setting but never deletes an item.

`expire_as_ttl_would` deletes what DynamoDB's TTL process would by `now`: nothing while TTL is disabled on the table,
else every item whose TTL attribute (epoch seconds) is before `now`. Tests and `make dev` use it to rehearse the
archive's hot/cold cycle (docs/design.md "Hot and cold").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def expire_as_ttl_would(client: Any, table: str, now: datetime) -> int:
    """Delete the items DynamoDB's TTL would have deleted by `now` (aware or UTC); returns how many."""
    description = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if description.get("TimeToLiveStatus") != "ENABLED":
        return 0
    attribute = description["AttributeName"]
    cutoff = int((now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp())
    deleted = 0
    for page in client.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk, sk, #ttl",
                                                       ExpressionAttributeNames={"#ttl": attribute}):  # fmt: skip
        for item in page["Items"]:
            if attribute in item and int(item[attribute]["N"]) < cutoff:
                client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
                deleted += 1
    return deleted
