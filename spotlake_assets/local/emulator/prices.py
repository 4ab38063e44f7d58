"""The Azure Retail Prices API the emulator serves: GET /api/retail/prices.

The prices of the catalogue for the data epoch of the emulator clock, in pages of `price_page_size` items
linked by NextPageLink ($skip paging), for the one filter the collector sends. On knobs, as Azure does
(docs/azure-sources.md): a page repeats the previous page's last item (`boundary_repeat_rate`), links end early
(`price_links_end_after`), and bursts over `prices_requests_per_second` get a 429.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote, urlencode

from flask import Flask, Response, request

from .. import catalogue as cat
from .. import price_list
from .faults import enter, with_record_faults
from .responses import error, json_answer, rate_limited
from .state import EmulatorState

_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_EXPECTED_FILTER = {"servicename": "Virtual Machines", "pricetype": "Consumption"}


def add_routes(app: Flask, state: EmulatorState) -> None:
    app.add_url_rule("/api/retail/prices", "prices", view_func=lambda: price_page(state), methods=["GET"])


def price_page(state: EmulatorState) -> Response:
    """One page of prices: the one at $skip."""
    with state.lock:
        state.price_urls.append(request.environ.get("RAW_URI") or request.full_path)
    if fault := enter(state, "prices"):
        return fault
    cfg = state.config
    with state.lock:
        now = time.monotonic()
        if state.price_window.prune(now) >= cfg.prices_requests_per_second:
            state.throttled["prices"] += 1
            return rate_limited("prices", cfg.retry_after_seconds, "Too many requests, retry later")
        state.price_window.times.append(now)
    currency = request.args.get("currencyCode", "'USD'")
    if currency.strip("'\"").upper() != "USD":
        return error(400, "BadRequest", f"currencyCode {currency!r} is not served by the emulator (only 'USD')")
    filter_text = request.args.get("$filter")
    if not _understood_filter(filter_text):
        return error(
            400,
            "BadRequest",
            f"Invalid OData filter {filter_text!r}: the emulator understands only "
            "\"serviceName eq 'Virtual Machines' and priceType eq 'Consumption'\"",
        )
    try:
        skip = int(request.args.get("$skip", "0"))
        if skip < 0:
            raise ValueError
    except ValueError:
        return error(400, "BadRequest", f"$skip {request.args.get('$skip')!r} is not a non-negative integer")
    key, size = state.data_key(), cfg.price_page_size
    total = price_list.price_count(key.seed, key.scale)
    items = price_list.price_page(key, skip, skip + size)
    if 0 < skip <= total and cat.unit(key.seed, "boundary", key.epoch, skip) < cfg.boundary_repeat_rate:
        # Azure's $skip paging sometimes repeats a boundary row on the next page.
        items = price_list.price_page(key, skip - 1, skip) + items
    next_link = None
    links_end = cfg.price_links_end_after and skip // size + 1 >= cfg.price_links_end_after
    if skip + size < total and not links_end:  # (Azure's links went missing like this on 2023-03-10)
        query = {"currencyCode": currency, "$filter": filter_text, "$skip": skip + size}
        next_link = f"{request.host_url}api/retail/prices?{urlencode(query, quote_via=quote, safe='$')}"
    items = with_record_faults(items, cfg.record_faults.get("price"))
    return json_answer(
        {
            "BillingCurrency": "USD",
            "CustomerEntityId": "Default",
            "CustomerEntityType": "Retail",
            "Items": items,
            "NextPageLink": next_link,
            "Count": len(items),
        }
    )


def _understood_filter(text: str | None) -> bool:
    """True for `serviceName eq 'Virtual Machines' and priceType eq 'Consumption'` (any clause order)."""
    if not text:
        return False
    clauses = [_CLAUSE.match(c) for c in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE)]
    if not all(clauses):
        return False
    found = {m.group(1).lower(): m.group(2) for m in clauses if m}
    return len(found) == len(clauses) and found == _EXPECTED_FILTER
