"""The instance types the history knows, for `spotlake history`'s "nearest known" hint (resources/query_api/hints.py).

The history table has no list of its types (listing them would take a `Scan`); the site's association file
(`query-selector/associated/association_azure.json`, docs/web-site.md) names every type ever collected, in the
environment's write bucket. Reading it is one `GetObject` of a file of a few tens of KB, done only when a query
found nothing for a type. The command line only: the query API's function may not read the bucket, and its hint
names no types.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from spotlake_assets.core.layout import ASSOCIATION_KEY

MAX_BYTES = 4 * 1024 * 1024  # the file of ~1,000 types is ~100 KB; a larger one is not read for a hint


def association_types(s3_client: Any, bucket: str) -> list[str]:
    """The types the association file in `bucket` names; [] when it is missing, unreadable or too large (a hint
    then names no types: the query's answer is unaffected)."""
    try:
        response = s3_client.get_object(Bucket=bucket, Key=ASSOCIATION_KEY)
        if int(response.get("ContentLength") or 0) > MAX_BYTES:
            return []
        document = json.loads(response["Body"].read(MAX_BYTES + 1))
    except (ClientError, BotoCoreError, ValueError):
        return []
    first = document[0] if isinstance(document, list) and document else None
    return sorted(str(name) for name in first) if isinstance(first, dict) else []
