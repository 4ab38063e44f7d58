"""Azure Resource Graph client for spot eviction rates, following `$skipToken` until the last page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from .http import RetryingClient

API_VERSION = "2024-04-01"
EVICTION_QUERY = (
    'spotresources | where type =~ "microsoft.compute/skuspotevictionrate/location" '
    "| project location = location, props = parse_json(properties) "
    "| project location = location, skuName = props.skuName, evictionRate = props.evictionRate "
    "| where isnotempty(skuName) and isnotempty(evictionRate) and isnotempty(location)"
)
ROW_FIELDS = ["location", "skuName", "evictionRate"]


class GraphCollectionError(RuntimeError):
    pass


@dataclass
class GraphFetch:
    rows: pd.DataFrame
    pages: int


@dataclass
class ResourceGraphClient:
    management_url: str
    http: RetryingClient
    bearer_token: Callable[[], str]
    page_size: int = 1000
    max_pages: int = 1000

    @property
    def url(self) -> str:
        return (
            f"{self.management_url.rstrip('/')}/providers/Microsoft.ResourceGraph/resources?api-version={API_VERSION}"
        )

    def eviction_rates(self) -> GraphFetch:
        endpoint = f"POST {self.url.split('?')[0]}"
        frames: list[pd.DataFrame] = []
        token: str | None = None
        for page in range(1, self.max_pages + 1):
            options: dict[str, object] = {"resultFormat": "objectArray", "$top": self.page_size}
            if token:
                options["$skipToken"] = token
            _, body = self.http.request_json(
                "POST",
                self.url,
                endpoint=endpoint,
                headers=lambda: {"Authorization": f"Bearer {self.bearer_token()}"},
                json={"query": EVICTION_QUERY, "options": options},
            )
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise GraphCollectionError(f"{endpoint}: answer has no data list (page {page})")
            frames.append(pd.DataFrame.from_records(body["data"], columns=ROW_FIELDS))
            token = body.get("$skipToken")
            if not token:
                rows = pd.concat(frames, ignore_index=True)
                return GraphFetch(rows=rows, pages=page)
        raise GraphCollectionError(f"{endpoint}: still a $skipToken after {self.max_pages} pages")
