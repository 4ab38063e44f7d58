"""Resource Graph as Azure documents it, not only as the emulator used to answer: the eviction query keeps a unique
sort key and Azure's own field paths, unstable pages of an unsorted query, truncated answers, the two spellings of
the buckets. Dagster materializations of `azure_eviction_raw` against the emulator over HTTP: each knob gives the
fault-free table, or the source is reported failed with a reason that names the counts."""

from __future__ import annotations

import pandas as pd
import pytest
import requests

from resources.azure_graph import EVICTION_QUERY, GraphCollectionError, ResourceGraphClient
from spotlake_assets.core.timekeys import data_time
from spotlake_assets.defs import azure_resource, build_resources
from spotlake_assets.local.emulator import EmulatorConfig

from .stack import FAST_AZURE, check_evaluations, graph, load_frame, metadata, run_assets, start, use_stack

BASELINE = "2026-11-27-10:10"
T = data_time(BASELINE)
# The query Azure's SpotResources sample uses (sku.name, tostring(properties.evictionRate)), with the unique id
# and the sort on it that Resource Graph needs for stable $skipToken pages. Written out, not imported.
OFFICIAL_QUERY = (
    "SpotResources | where type =~ 'microsoft.compute/skuspotevictionrate/location' "
    "| project id, location, skuName = tostring(sku.name), evictionRate = tostring(properties.evictionRate) "
    "| where isnotempty(id) and isnotempty(location) and isnotempty(skuName) and isnotempty(evictionRate) "
    "| order by id asc"
)
DEFAULTS = {name: getattr(EmulatorConfig(), name) for name in (
    "arg_rows_per_page", "arg_unstable_unsorted_paging", "arg_result_truncated", "arg_sku_name_path",
    "eviction_rate_style",
)}  # fmt: skip

[azure_eviction_raw] = graph("azure_eviction_raw")


@pytest.fixture(scope="module")
def stack():
    with start() as s:
        s.emulator.set_time(T)
        yield s


@pytest.fixture(scope="module")
def clean(stack) -> pd.DataFrame:
    """The IF table of a fault-free collection (one page: the small catalogue's rows fit in 1,000)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert collect(stack, monkeypatch, BASELINE).success
        return stored(stack, BASELINE)


def knobs(stack, **values) -> None:
    """Set emulator knobs over its HTTP admin endpoint, every Resource Graph knob back to its default first."""
    r = requests.post(f"{stack.emulator.base_url}/_emulator/config", json={**DEFAULTS, **values}, timeout=10)
    assert r.status_code == 200, r.text


def collect(stack, monkeypatch, partition: str):
    return run_assets(
        stack, monkeypatch, [azure_eviction_raw], partition, data_time(partition), max_tries=3, set_emulator_time=False
    )


def stored(stack, partition: str) -> pd.DataFrame:
    return load_frame(build_resources(stack.settings)["store"], "azure_eviction_raw", partition)


def failure(result) -> str:
    """The reason the source was reported failed (its `collected` check and metadata say the same)."""
    evaluation = check_evaluations(result)[("azure_eviction_raw", "collected")]
    assert not evaluation.passed
    error = evaluation.metadata["error"].value
    assert metadata(result, "azure_eviction_raw")["collection_failed"] == error
    return error


def test_the_query_sent_is_azures_sample_with_a_unique_sort_key(stack, clean, monkeypatch):
    knobs(stack, arg_rows_per_page=50)
    stack.emulator.reset_stats()
    result = collect(stack, monkeypatch, "2026-11-27-10:20")
    assert result.success
    pages = metadata(result, "azure_eviction_raw")["pages"]
    assert pages == -(-len(clean) // 50) > 1
    assert stack.emulator.stats()["resource_graph_queries"] == {OFFICIAL_QUERY: pages}
    pd.testing.assert_frame_equal(stored(stack, "2026-11-27-10:20"), clean)


def test_unstable_pages_of_an_unsorted_query_do_not_change_the_table(stack, clean, monkeypatch):
    """The emulator moves rows between the pages of a query without `order by id` (some twice, some never);
    the collector's sorted query pages stably and gets every row once."""
    knobs(stack, arg_rows_per_page=40, arg_unstable_unsorted_paging=True)
    result = collect(stack, monkeypatch, "2026-11-27-10:30")
    assert result.success
    pd.testing.assert_frame_equal(stored(stack, "2026-11-27-10:30"), clean)
    assert metadata(result, "azure_eviction_raw")["source_rows"] == len(clean)


def test_repeated_or_missing_rows_fail_the_client_with_the_counts(stack, monkeypatch):
    """Should paging ever repeat or miss rows (here: the same query without its sort), the distinct ids do not
    add up to totalRecords; after a second pass the collection fails and says how many rows went missing."""
    knobs(stack, arg_rows_per_page=40, arg_unstable_unsorted_paging=True)
    use_stack(stack, monkeypatch)  # the AzureAuth item of the stack's moto server holds the service principal
    azure = azure_resource(stack.settings, max_tries=3, **FAST_AZURE)
    unsorted = EVICTION_QUERY.replace(" | order by id asc", "")
    client = ResourceGraphClient(
        management_url=azure.management_url, http=azure.http(), bearer_token=azure.bearer_token, query=unsorted
    )
    with pytest.raises(GraphCollectionError) as failed:
        client.eviction_rates()
    message = str(failed.value)
    assert "Microsoft.ResourceGraph" in message and message.count("distinct ids") == 2
    assert "repeated" in message and "missing" in message


def test_a_truncated_answer_fails_the_source_naming_what_it_got(stack, clean, monkeypatch):
    """resultTruncated "true" comes without a $skipToken: the rest cannot be asked for, so the source fails
    instead of storing a partial table."""
    knobs(stack, arg_result_truncated=True)
    result = collect(stack, monkeypatch, "2026-11-27-10:40")
    error = failure(result)
    assert "Microsoft.ResourceGraph" in error and "truncated" in error
    assert f"{len(clean) // 2} of totalRecords {len(clean)}" in error


def test_percent_buckets_give_the_same_table(stack, clean, monkeypatch):
    knobs(stack, eviction_rate_style="percent")
    result = collect(stack, monkeypatch, "2026-11-27-10:50")
    assert result.success
    pd.testing.assert_frame_equal(stored(stack, "2026-11-27-10:50"), clean)
    assert metadata(result, "azure_eviction_raw")["unknown_rates"] == 0


def test_size_names_at_the_official_path_give_the_same_table(stack, clean, monkeypatch):
    knobs(stack, arg_sku_name_path="sku.name")
    result = collect(stack, monkeypatch, "2026-11-27-11:00")
    assert result.success
    pd.testing.assert_frame_equal(stored(stack, "2026-11-27-11:00"), clean)


def test_a_field_path_that_does_not_hold_fails_the_source_instead_of_storing_nothing(stack, monkeypatch):
    knobs(stack, arg_sku_name_path="properties.skuName")  # rows without sku.name: the query matches nothing
    error = failure(collect(stack, monkeypatch, "2026-11-27-11:10"))
    assert "matched no rows" in error and "totalRecords 0" in error
