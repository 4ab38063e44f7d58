"""The checks every Retail Prices page passes, and the links guessed to fetch pages ahead (pure functions)."""

from __future__ import annotations

import pytest

from resources.azure_prices import Page, PriceCollectionError, _guesses, _probe_after, check_page, first_page_url

BASE = "https://prices.azure.com/api/retail/prices"


def test_a_page_shorter_than_its_next_link_skips_is_refused():
    check_page(f"{BASE}?$skip=100", 100, 100, f"{BASE}?$skip=200")  # a full page
    check_page(f"{BASE}?$skip=100", 101, 101, f"{BASE}?$skip=200")  # a boundary row repeated
    check_page(f"{BASE}?$skip=100", 37, 37, None)  # the last page may be short
    with pytest.raises(PriceCollectionError, match="served 100 items but NextPageLink skips to \\$skip=1100: 900"):
        check_page(f"{BASE}?$skip=100", 100, 100, f"{BASE}?$skip=1100")
    with pytest.raises(PriceCollectionError, match="Count says 1000 but the page holds 999"):
        check_page(f"{BASE}?$skip=100", 999, 1000, f"{BASE}?$skip=1099")
    with pytest.raises(PriceCollectionError, match="goes back"):
        check_page(f"{BASE}?$skip=100", 100, 100, f"{BASE}?$skip=100")
    with pytest.raises(PriceCollectionError, match="empty page links"):
        check_page(f"{BASE}?$skip=100", 0, 0, f"{BASE}?$skip=200")


def test_guessed_links_change_only_the_skip_of_the_given_link():
    given = f"{BASE}?currencyCode='USD'&$filter=serviceName%20eq%20'Virtual%20Machines'&$skip=200"
    assert _guesses(f"{BASE}?$skip=100", given, 2) == [given.replace("=200", "=300"), given.replace("=200", "=400")]
    assert _guesses(f"{BASE}?$filter=x", f"{BASE}?$filter=x&$skip=1000", 1) == [f"{BASE}?$filter=x&$skip=2000"]
    assert _guesses(BASE, f"{BASE}?$skiptoken=abc", 3) == []  # no offsets: only the given link is followed


def test_the_first_url_is_written_like_azures_own_links():
    assert first_page_url(BASE) == (
        f"{BASE}?currencyCode=%27USD%27&$filter=serviceName%20eq%20%27Virtual%20Machines%27%20and%20priceType%20eq%20"
        "%27Consumption%27"
    )


def page(url: str, served: int) -> Page:
    return Page(url, None, served, None)  # type: ignore[arg-type]


def test_a_full_last_page_is_confirmed_by_the_page_after_it():
    assert _probe_after([page(f"{BASE}?$filter=x", 1000), page(f"{BASE}?$filter=x&$skip=1000", 1000)]) == (
        f"{BASE}?$filter=x&$skip=2000"
    )
    assert _probe_after([page(f"{BASE}?$filter=x", 1000), page(f"{BASE}?$filter=x&$skip=1000", 999)]) is None
    assert _probe_after([page(f"{BASE}?$filter=x", 1000)]) == f"{BASE}?$filter=x&$skip=1000"
    assert _probe_after([page(f"{BASE}?$filter=x", 37)]) is None  # a short only page is plainly the last
