"""Retail Prices paging as Azure documents it: the query in the form of Azure's own links, every page taken from the
NextPageLink Azure gave (never from a computed `$skip`), pages of whatever size Azure serves, and no page allowed to
be silently short. Materializations of `azure_price_raw` against the emulator over HTTP, plus the page checks."""

from __future__ import annotations

import pandas as pd
import pytest
import requests

from spotlake_assets.core.timekeys import data_time
from spotlake_assets.defs import build_resources

from .stack import check_evaluations, graph, load_frame, metadata, run_assets, start

BASELINE = "2026-11-27-10:10"
T = data_time(BASELINE)
# Azure's own links keep `$` and write spaces as %20 and quotes as %27 (the collector used to send %24filter and '+').
FIRST_QUERY = (
    "currencyCode=%27USD%27&$filter=serviceName%20eq%20%27Virtual%20Machines%27%20and%20priceType%20eq%20"
    "%27Consumption%27"
)

[azure_price_raw] = graph("azure_price_raw")


@pytest.fixture(scope="module")
def stack():
    with start(boundary_repeat_rate=0.2) as s:
        s.emulator.set_time(T)
        yield s


@pytest.fixture(scope="module")
def clean(stack) -> pd.DataFrame:
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert collect(stack, monkeypatch, BASELINE).success
        return stored(stack, BASELINE)


def collect(stack, monkeypatch, partition: str, **azure):
    return run_assets(
        stack,
        monkeypatch,
        [azure_price_raw],
        partition,
        data_time(partition),
        max_tries=3,
        set_emulator_time=False,
        **azure,
    )


def stored(stack, partition: str) -> pd.DataFrame:
    return load_frame(build_resources(stack.settings)["store"], "azure_price_raw", partition)


def page_size(stack, size: int) -> None:
    r = requests.post(f"{stack.emulator.base_url}/_emulator/config", json={"price_page_size": size}, timeout=10)
    assert r.status_code == 200, r.text


def links_of_the_chain(stack) -> list[str]:
    """Path and query of every page, walking Azure's NextPageLinks from the first URL (the emulator's own)."""
    url = f"{stack.emulator.base_url}/api/retail/prices?{FIRST_QUERY}"
    chain = []
    while url:
        chain.append(url.removeprefix(stack.emulator.base_url))
        url = requests.get(url, timeout=10).json()["NextPageLink"]
    return chain


def test_every_page_is_the_link_azure_gave_starting_from_azures_own_form(stack, clean, monkeypatch):
    page_size(stack, 1000)
    stack.emulator.reset_stats()
    result = collect(stack, monkeypatch, "2026-11-27-10:20", price_page_concurrency=1)
    assert result.success
    sent = stack.emulator.stats()["price_urls"]
    assert sent[0] == f"/api/retail/prices?{FIRST_QUERY}"
    assert sent == links_of_the_chain(stack)
    pd.testing.assert_frame_equal(stored(stack, "2026-11-27-10:20"), clean)


def test_pages_of_100_items_give_the_same_table(stack, clean, monkeypatch):
    """Azure's page once held 100 items: the collector follows the links Azure gives, whatever their step, and
    the pages it fetched ahead are used only where their URL is the given link."""
    page_size(stack, 100)
    stack.emulator.reset_stats()
    result = collect(stack, monkeypatch, "2026-11-27-10:30")
    assert result.success
    pd.testing.assert_frame_equal(stored(stack, "2026-11-27-10:30"), clean)
    sent = stack.emulator.stats()["price_urls"]
    chain = links_of_the_chain(stack)
    assert metadata(result, "azure_price_raw")["pages"] == len(chain) > 10
    assert set(chain) <= set(sent)  # every page of the chain was asked ...
    assert len(sent) - len(chain) < 8  # ... and little else: at most the pages guessed past the end


def test_pages_of_any_size_from_one_to_a_thousand_are_followed(stack, clean, monkeypatch):
    page_size(stack, 337)
    result = collect(stack, monkeypatch, "2026-11-27-10:40", price_page_concurrency=4)
    assert result.success
    pd.testing.assert_frame_equal(stored(stack, "2026-11-27-10:40"), clean)


@pytest.mark.parametrize(("partition", "end_after"), [("2026-11-27-10:50", 1), ("2026-11-27-11:00", 2)])
def test_links_that_end_early_fail_the_source_instead_of_dropping_the_rest(stack, monkeypatch, partition, end_after):
    """Azure's NextPageLink once went missing (2023-03-10): a full last page is confirmed by the page after it,
    which here still holds items, so the source fails and says so."""
    page_size(stack, 1000)
    r = requests.post(
        f"{stack.emulator.base_url}/_emulator/config", json={"price_links_end_after": end_after}, timeout=10
    )
    assert r.status_code == 200, r.text
    try:
        result = collect(stack, monkeypatch, partition)
    finally:
        requests.post(f"{stack.emulator.base_url}/_emulator/config", json={"price_links_end_after": 0}, timeout=10)
    evaluation = check_evaluations(result)[("azure_price_raw", "collected")]
    assert not evaluation.passed
    error = evaluation.metadata["error"].value
    assert "/api/retail/prices" in error and "has no NextPageLink" in error and "links end early" in error
