"""Azure Retail Prices API client: every Virtual Machines consumption item, by following `NextPageLink` as given.

Azure's page size is its own business (its documentation said 100 items a page, then 1,000), so the collector never
computes an offset it trusts: the first URL is written the way Azure's own links are (`$filter`, `%20` for spaces,
`%27` for quotes), and every later page is the exact `NextPageLink` of the page before. Each page is checked:
`Count` must match the items, and when both links carry a `$skip`, the page must have served at least as many items
as the next link skips over, so a short page can never silently drop rows; a full last page is confirmed by asking
the page after it, which must be empty (a NextPageLink that goes missing would otherwise end the list early).

To stay fast, up to `concurrency - 1` pages are fetched ahead on a guess (the given link with its `$skip` moved on
by the step Azure's last two links took). A page fetched ahead is used only when its URL is byte for byte the link
Azure then gives; otherwise it is thrown away and the given link is fetched. A wrong guess costs a request, never
a row.
"""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pandas as pd

from spotlake_assets.core.transforms.price import drop_unwanted_items, items_frame
from spotlake_assets.core.validation import Rejections, price_item_problem, split_valid

from .http import Pacer, RetryingClient

PRICE_FILTER = "serviceName eq 'Virtual Machines' and priceType eq 'Consumption'"
_SKIP_TOKEN = re.compile(r"([?&](?:\$|%24)skip=)(\d+)", re.IGNORECASE)
MIN_FULL_FIRST_PAGE = 100  # the smallest page size Azure's documentation ever gave


class PriceCollectionError(RuntimeError):
    pass


@dataclass
class PriceFetch:
    items: pd.DataFrame  # the items the dataset can use (see drop_unwanted_items)
    pages: int
    items_seen: int  # every item the API served
    requests: int = 0  # pages asked, including pages fetched ahead and not used
    rejections: Rejections = field(default_factory=Rejections)  # items of the wrong shape or out of range
    prefetched_used: int = 0  # pages fetched ahead whose URL was the link Azure then gave


@dataclass(frozen=True)
class Page:
    url: str
    items: pd.DataFrame  # the usable items (kept fields only)
    served: int  # every item the page held
    next_link: str | None
    rejections: Rejections = field(default_factory=Rejections)  # items of the wrong shape or out of range


def first_page_url(url: str) -> str:
    """The first page's URL in the form of Azure's own links (docs/azure-sources.md): `$filter` with its `$`,
    spaces as `%20`, quotes as `%27`."""
    query = urlencode({"currencyCode": "'USD'", "$filter": PRICE_FILTER}, quote_via=quote, safe="$")
    return f"{url}?{query}"


def skip_of(url: str) -> int | None:
    """The `$skip` of a link (0 when it has none but is the first page's), or None when it is not a number."""
    values = parse_qs(urlsplit(url).query, keep_blank_values=True).get("$skip")
    if not values:
        return 0
    try:
        return int(values[0])
    except ValueError:
        return None


def check_page(url: str, served: int, count: object, next_link: str | None) -> None:
    """Raise PriceCollectionError when a page cannot be trusted to have served every item up to its next link."""
    if count is not None and count != served:
        raise PriceCollectionError(f"GET {_shown(url)}: Count says {count} but the page holds {served} items")
    if next_link is None:
        return
    if urlsplit(next_link).scheme not in ("http", "https"):
        scheme = urlsplit(next_link).scheme[:20]
        raise PriceCollectionError(f"GET {_shown(url)}: NextPageLink is not an http(s) URL (scheme {scheme!r})")
    if served == 0:
        raise PriceCollectionError(f"GET {_shown(url)}: an empty page links to another page ({_shown(next_link)})")
    here, there = skip_of(url), skip_of(next_link)
    if here is None or there is None or "$skip" not in parse_qs(urlsplit(next_link).query):
        return  # no offsets to compare: the link is followed as given
    if there <= here:
        raise PriceCollectionError(f"GET {_shown(url)}: NextPageLink goes back to $skip={there} from $skip={here}")
    if served < there - here:
        raise PriceCollectionError(
            f"GET {_shown(url)}: the page served {served} items but NextPageLink skips to $skip={there}: "
            f"{there - here - served} items would never be read"
        )


def _shown(url: str) -> str:
    """A URL for an error message: the path and its $skip, without the filter text."""
    parts = urlsplit(url)
    skip = skip_of(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + (f" $skip={skip}" if skip else "")


@dataclass
class RetailPricesClient:
    url: str
    http: RetryingClient
    concurrency: int = 8  # 1 fetches strictly one page after the other
    max_requests_per_second: float = 20.0  # Azure throttles bursts with a 60 s retry-after
    max_pages: int = 5000  # a few hundred pages of 1,000, or a few thousand of 100; more means paging went wrong

    def __post_init__(self) -> None:
        self._pacer = Pacer(self.max_requests_per_second)

    def fetch_page(self, url: str) -> Page:
        """One page: its usable items, how many it served, and its NextPageLink, checked."""
        self._pacer.wait()
        _, body = self.http.request_json("GET", url, endpoint=f"GET {_shown(url)}")
        if not isinstance(body, dict) or not isinstance(body.get("Items"), list):
            raise PriceCollectionError(f"GET {_shown(url)}: answer has no Items list")
        items = body["Items"]
        next_link = body.get("NextPageLink") or None
        if next_link is not None and not isinstance(next_link, str):
            raise PriceCollectionError(f"GET {_shown(url)}: NextPageLink is not a string")
        check_page(url, len(items), body.get("Count"), next_link)
        valid, rejections = split_valid(items, price_item_problem)
        return Page(url, drop_unwanted_items(items_frame(valid)), len(items), next_link, rejections)

    def fetch_all(self) -> PriceFetch:
        url: str | None = first_page_url(self.url)
        pages: list[Page] = []
        seen: set[str] = set()
        ahead: dict[str, Future[Page]] = {}
        requests = used_ahead = 0
        with ThreadPoolExecutor(max_workers=max(self.concurrency - 1, 1), thread_name_prefix="prices") as pool:
            try:
                while url is not None:
                    if len(pages) >= self.max_pages:
                        raise PriceCollectionError(
                            f"GET {self.url}: still a NextPageLink after {self.max_pages} pages"
                        )
                    if url in seen:
                        raise PriceCollectionError(
                            f"GET {_shown(url)}: NextPageLink leads back to a page already read"
                        )
                    seen.add(url)
                    page = self._take_ahead(ahead.pop(url, None))
                    if page is None:
                        requests += 1
                        page = self.fetch_page(url)  # a page that failed for good fails the collection
                    else:
                        used_ahead += 1
                    pages.append(page)
                    url = page.next_link
                    if url is not None and self.concurrency > 1:
                        for guess in _guesses(page.url, url, self.concurrency - 1):
                            if guess not in ahead and guess not in seen:
                                requests += 1
                                ahead[guess] = pool.submit(self.fetch_page, guess)
            finally:
                for future in ahead.values():
                    future.cancel()
        if (probe := _probe_after(pages)) is not None:
            # A full last page may be a NextPageLink that went missing (Azure's page lost it on 2023-03-10):
            # the page after it must be empty. Its items are never used, only counted.
            requests += 1
            after = self.fetch_page(probe)
            if after.served:
                raise PriceCollectionError(
                    f"GET {_shown(pages[-1].url)}: the last page is full and has no NextPageLink, but the page after "
                    f"it ({_shown(probe)}) holds {after.served} items: Azure's links end early"
                )
        rejections = Rejections()
        for page in pages:
            rejections.add(page.rejections)
        kept = [p.items for p in pages if not p.items.empty]
        items = pd.concat(kept, ignore_index=True) if kept else items_frame([])
        return PriceFetch(
            items=items,
            pages=sum(1 for p in pages if p.served),
            items_seen=sum(p.served for p in pages),
            requests=requests - sum(1 for f in ahead.values() if f.cancelled()),
            prefetched_used=used_ahead,
            rejections=rejections,
        )

    @staticmethod
    def _take_ahead(future: Future[Page] | None) -> Page | None:
        """The page fetched ahead for the link just given, or None when there is none or it failed (then the
        link is fetched again, with its own retries)."""
        if future is None:
            return None
        try:
            return future.result()
        except Exception:  # noqa: BLE001 - a guess that failed is refetched as the given link
            return None


def _probe_after(pages: list[Page]) -> str | None:
    """The URL of the page after a last page that is full (as long as the step of the links before it, or at least
    100 items when it is the only page), or None when the last page is short and so plainly the last."""
    last = pages[-1]
    here = skip_of(last.url)
    if here is None or last.served == 0:
        return None
    if len(pages) >= 2:
        before = skip_of(pages[-2].url)
        if before is None or last.served < here - before or here <= before:
            return None
        step = here - before
    elif last.served >= MIN_FULL_FIRST_PAGE:
        step = last.served
    else:
        return None
    if _SKIP_TOKEN.search(last.url):
        return _SKIP_TOKEN.sub(lambda m: f"{m.group(1)}{here + step}", last.url, count=1)
    return f"{last.url}&$skip={here + step}"


def _guesses(url: str, next_link: str, n: int) -> list[str]:
    """The n links after `next_link` if Azure keeps the step it took from `url` to `next_link`: `next_link` with
    only its `$skip` value changed. None when the links carry no comparable `$skip`."""
    here, there = skip_of(url), skip_of(next_link)
    match = _SKIP_TOKEN.search(next_link)
    if here is None or there is None or match is None or there <= here:
        return []
    step = there - here
    return [
        _SKIP_TOKEN.sub(lambda m, k=k: f"{m.group(1)}{there + k * step}", next_link, count=1) for k in range(1, n + 1)
    ]
