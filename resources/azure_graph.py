"""Azure Resource Graph client for spot eviction rates: one stable, checked pass over `$skipToken` pages.

What Azure documents and this client relies on (docs/azure-sources.md):
- pages are stable only when the query sorts by a unique column, so the query keeps the resource `id` and ends
  with `order by id asc`;
- `resultTruncated = "true"` means the table was cut and no `$skipToken` follows: that answer is incomplete;
- `totalRecords` is how many rows match the query: the rows of all pages, counted once by `id`, must add up to it.
A pass whose pages repeat or miss rows is asked once more (Azure's data can change while it is paged); a second
such pass, a truncated answer or an empty one fails the source with a GraphCollectionError naming the counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from spotlake_assets.core.validation import Rejections, eviction_row_problem, split_valid

from .http import RetryingClient

API_VERSION = "2024-04-01"
# Field paths of Azure's own SpotResources sample (sku.name, tostring(properties.evictionRate)), plus the
# unique `id` and the sort on it that stable paging needs.
EVICTION_QUERY = (
    "SpotResources"
    " | where type =~ 'microsoft.compute/skuspotevictionrate/location'"
    " | project id, location, skuName = tostring(sku.name), evictionRate = tostring(properties.evictionRate)"
    " | where isnotempty(id) and isnotempty(location) and isnotempty(skuName) and isnotempty(evictionRate)"
    " | order by id asc"
)
ROW_FIELDS = ["id", "location", "skuName", "evictionRate"]


class GraphCollectionError(RuntimeError):
    pass


class _UnstablePass(Exception):
    """A pass whose pages did not add up (repeated or missing rows, a moving total): worth one more pass."""

    def __init__(self, reason: str, pages: int) -> None:
        super().__init__(reason)
        self.reason, self.pages = reason, pages


@dataclass
class GraphFetch:
    rows: pd.DataFrame  # ROW_FIELDS, one row per resource id, in id order
    pages: int  # pages asked in all passes
    total_records: int = 0
    passes: int = 1
    rejections: Rejections = field(default_factory=Rejections)  # rows of the wrong shape, left out


@dataclass
class ResourceGraphClient:
    management_url: str
    http: RetryingClient
    bearer_token: Callable[[], str]
    page_size: int = 1000
    max_pages: int = 1000
    max_passes: int = 2
    query: str = EVICTION_QUERY

    @property
    def url(self) -> str:
        return (
            f"{self.management_url.rstrip('/')}/providers/Microsoft.ResourceGraph/resources?api-version={API_VERSION}"
        )

    @property
    def endpoint(self) -> str:
        return f"POST {self.url.split('?')[0]}"

    def eviction_rates(self) -> GraphFetch:
        pages = 0
        problems: list[str] = []
        for attempt in range(1, self.max_passes + 1):
            try:
                rows, total, used, rejections = self._one_pass()
            except _UnstablePass as exc:
                pages += exc.pages
                problems.append(exc.reason)
                continue
            return GraphFetch(
                rows=rows, pages=pages + used, total_records=total, passes=attempt, rejections=rejections
            )
        raise GraphCollectionError(f"{self.endpoint}: {'; then '.join(problems)}")

    def _one_pass(self) -> tuple[pd.DataFrame, int, int, Rejections]:
        """(rows, totalRecords, pages, rejected rows) of one pass; raises _UnstablePass or GraphCollectionError."""
        endpoint = self.endpoint
        rows: dict[str, dict[str, object]] = {}
        served = 0
        total: int | None = None
        token: str | None = None
        for page in range(1, self.max_pages + 1):
            body = self._page(token, page)
            data = body["data"]
            page_total = body["totalRecords"]
            if total is not None and page_total != total:
                raise _UnstablePass(
                    f"totalRecords changed from {total} to {page_total} at page {page} (the data moved)", page
                )
            total = page_total
            served += len(data)
            for i, row in enumerate(data):
                if not isinstance(row, dict) or not row.get("id"):
                    # the row's field names, not its values: error text never carries a body (error_text.py)
                    fields = sorted(row)[:10] if isinstance(row, dict) else type(row).__name__
                    raise GraphCollectionError(f"{endpoint}: row {i} of page {page} has no id (fields: {fields})")
                rows.setdefault(str(row["id"]), row)
            token = body.get("$skipToken")
            if str(body.get("resultTruncated", "false")).lower() == "true":
                # Azure sets no $skipToken on a truncated answer: the rest of the table cannot be asked for.
                raise GraphCollectionError(
                    f"{endpoint}: answer truncated (resultTruncated=true) at page {page}: "
                    f"{len(rows)} of totalRecords {total} rows served"
                )
            if not token:
                break
        else:
            raise GraphCollectionError(f"{endpoint}: still a $skipToken after {self.max_pages} pages")
        if not total:
            raise GraphCollectionError(
                f"{endpoint}: the eviction-rate query matched no rows (totalRecords {total}); "
                "a field path of the query may not hold"
            )
        if len(rows) != total or served != total:
            raise _UnstablePass(
                f"{page} pages served {served} rows, {len(rows)} distinct ids, for totalRecords {total} "
                f"({served - len(rows)} repeated, {max(total - len(rows), 0)} missing)",
                page,
            )
        valid, rejections = split_valid([rows[k] for k in sorted(rows)], eviction_row_problem)
        frame = pd.DataFrame.from_records(valid, columns=ROW_FIELDS)
        return frame, total, page, rejections

    def _page(self, token: str | None, page: int) -> dict:
        options: dict[str, object] = {"resultFormat": "objectArray", "$top": self.page_size}
        if token:
            options["$skipToken"] = token
        _, body = self.http.request_json(
            "POST",
            self.url,
            endpoint=self.endpoint,
            headers=lambda: {"Authorization": f"Bearer {self.bearer_token()}"},
            json={"query": self.query, "options": options},
        )
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise GraphCollectionError(f"{self.endpoint}: answer has no data list (page {page})")
        total, count = body.get("totalRecords"), body.get("count")
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise GraphCollectionError(f"{self.endpoint}: answer has no totalRecords count (page {page})")
        if count is not None and count != len(body["data"]):
            raise GraphCollectionError(
                f"{self.endpoint}: page {page} says count {count} but holds {len(body['data'])} rows"
            )
        return body
