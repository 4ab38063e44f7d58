"""Azure Retail Prices API client: every Virtual Machines consumption item, fetched by parallel `$skip` pages."""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlencode

import pandas as pd

from spotlake_assets.core.transforms.price import drop_unwanted_items, items_frame

from .http import Pacer, RetryingClient

PAGE_SIZE = 1000
PRICE_FILTER = "serviceName eq 'Virtual Machines' and priceType eq 'Consumption'"


class PriceCollectionError(RuntimeError):
    pass


@dataclass
class PriceFetch:
    items: pd.DataFrame  # the items the dataset can use (see drop_unwanted_items)
    pages: int
    items_seen: int  # every item the API served


@dataclass
class RetailPricesClient:
    """Pages are asked by `$skip` offsets, several at once (the legacy used 12 threads), until a page says
    it is the last (no NextPageLink) or comes back empty; pages past the end are discarded."""

    url: str
    http: RetryingClient
    concurrency: int = 8
    max_requests_per_second: float = 20.0  # Azure throttles bursts with a 60 s retry-after
    max_pages: int = 2000  # the API has a few hundred pages; more means paging went wrong

    def __post_init__(self) -> None:
        self._pacer = Pacer(self.max_requests_per_second)

    def page_url(self, skip: int) -> str:
        query = {"currencyCode": "'USD'", "$filter": PRICE_FILTER}
        if skip:
            query["$skip"] = str(skip)
        return f"{self.url}?{urlencode(query)}"

    def fetch_page(self, skip: int) -> tuple[pd.DataFrame, int, bool]:
        """One page's usable items (kept fields only), how many it served, and whether it is the last page."""
        self._pacer.wait()
        _, body = self.http.request_json("GET", self.page_url(skip), endpoint=f"GET {self.url} $skip={skip}")
        if not isinstance(body, dict) or not isinstance(body.get("Items"), list):
            raise PriceCollectionError(f"GET {self.url} $skip={skip}: answer has no Items list")
        items = body["Items"]
        return drop_unwanted_items(items_frame(items)), len(items), not items or not body.get("NextPageLink")

    def fetch_all(self) -> PriceFetch:
        pages: dict[int, tuple[pd.DataFrame, int]] = {}
        end: int | None = None  # skip offset of the last page
        next_skip = 0
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="prices") as pool:
            running: dict[Future, int] = {}
            while running or end is None:
                while end is None and len(running) < self.concurrency:
                    if next_skip >= self.max_pages * PAGE_SIZE:
                        raise PriceCollectionError(f"GET {self.url}: no last page within {self.max_pages} pages")
                    running[pool.submit(self.fetch_page, next_skip)] = next_skip
                    next_skip += PAGE_SIZE
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    skip = running.pop(future)
                    frame, served, last = future.result()  # a page that failed for good fails the collection
                    pages[skip] = (frame, served)
                    if last:
                        end = skip if end is None else min(end, skip)
        in_range = [pages[s] for s in sorted(pages) if s <= end]
        kept = [frame for frame, _ in in_range if not frame.empty]
        items = pd.concat(kept, ignore_index=True) if kept else items_frame([])
        return PriceFetch(items=items, pages=sum(1 for _, n in in_range if n), items_seen=sum(n for _, n in in_range))
