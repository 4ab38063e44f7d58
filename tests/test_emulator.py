"""The local Azure emulator over HTTP: shapes, paging, determinism, drift, overrides, limits, faults."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from spotlake_assets.local import catalogue as cat
from spotlake_assets.local import drift, price_list
from spotlake_assets.local.emulator import SPS_THROTTLE_TEXT, AzureEmulator, EmulatorConfig

T0 = datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
VM_FILTER = "serviceName eq 'Virtual Machines' and priceType eq 'Consumption'"
EVICTION_QUERY = (
    'spotresources | where type =~ "microsoft.compute/skuspotevictionrate/location" '
    "| project location = location, props = parse_json(properties) "
    "| project location = location, skuName = props.skuName, evictionRate = props.evictionRate"
)
SCORES = {"High", "Medium", "Low", "RestrictedSkuNotAvailable", "DataNotFoundOrStale"}
# Knobs a test starts from: no faults, no boundary repeats, limits far away.
QUIET = dict(boundary_repeat_rate=0.0, prices_requests_per_second=10_000, arg_quota_per_5s=10_000)


@pytest.fixture(scope="module")
def server() -> Iterator[AzureEmulator]:
    emu = AzureEmulator(EmulatorConfig(seed=7, scale="small")).start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(server: AzureEmulator) -> AzureEmulator:
    """The shared emulator, back to default knobs (quiet), a frozen clock at T0 and empty stats."""
    defaults = {f.name: getattr(EmulatorConfig(seed=7), f.name) for f in dataclasses.fields(EmulatorConfig)}
    server.configure(**{**defaults, **QUIET})
    server.set_time(T0)
    server.reset_stats()
    return server


@pytest.fixture(scope="module")
def token(server: AzureEmulator) -> str:
    c = server.credentials
    r = requests.post(
        f"https://{server.authority}/{c['tenant_id']}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": c["client_id"],
            "client_secret": c["client_secret"],
            "scope": "https://management.azure.com/.default",
        },
        verify=server.ca_file,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def get_prices(emu: AzureEmulator, skip: int | None = None, flt: str = VM_FILTER) -> requests.Response:
    params = {"currencyCode": "'USD'", "$filter": flt, **({"$skip": skip} if skip is not None else {})}
    return requests.get(f"{emu.base_url}/api/retail/prices", params=params, timeout=10)


def all_price_pages(emu: AzureEmulator) -> list[dict[str, Any]]:
    pages, url = [], None
    first = get_prices(emu)
    while True:
        r = first if url is None else requests.get(url, timeout=10)
        assert r.status_code == 200, r.text
        pages.append(r.json())
        url = pages[-1]["NextPageLink"]
        if url is None:
            return pages


def arg(
    emu: AzureEmulator, token: str | None, options: dict[str, Any], query: str = EVICTION_QUERY
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(
        f"{emu.base_url}/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01",
        json={"query": query, "options": {"resultFormat": "objectArray", **options}},
        headers=headers,
        timeout=10,
    )


def sps(
    emu: AzureEmulator,
    token: str | None,
    body: dict[str, Any],
    *,
    sub: str | None = None,
    location: str = "eastus",
) -> requests.Response:
    sub = sub or emu.credentials["subscriptions"][0]
    return requests.post(
        f"{emu.base_url}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}"
        "/placementScores/spot/generate?api-version=2025-06-05",
        json=body,
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout=10,
    )


def sps_body(locations: list[str], sizes: list[str], count: int = 1) -> dict[str, Any]:
    return {
        "availabilityZones": True,
        "desiredCount": count,
        "desiredLocations": locations,
        "desiredSizes": [{"sku": s} for s in sizes],
    }


def key_at(t: datetime, **kw: Any) -> drift.DataKey:
    return drift.DataKey.make(7, "small", drift.epoch_of(t), **kw)


# ---- prices --------------------------------------------------------------------------------------


def test_price_pages_follow_next_page_link_to_the_whole_list(emu: AzureEmulator) -> None:
    pages = all_price_pages(emu)
    items = [i for p in pages for i in p["Items"]]
    assert len(pages) == -(-price_list.price_count(7, "small") // 1000) >= 2
    assert all(p["Count"] == len(p["Items"]) for p in pages)
    assert [len(p["Items"]) for p in pages[:-1]] == [1000] * (len(pages) - 1)
    assert {"BillingCurrency", "CustomerEntityId", "CustomerEntityType"} <= pages[0].keys()
    assert "$skip=1000" in pages[0]["NextPageLink"] and pages[0]["NextPageLink"].startswith(emu.base_url)
    assert items == price_list.price_items(key_at(T0))
    beyond = get_prices(emu, skip=len(items) + 5000).json()
    assert beyond["Items"] == [] and beyond["NextPageLink"] is None and beyond["Count"] == 0


def test_price_items_carry_the_documented_shape_and_planted_cases(emu: AzureEmulator) -> None:
    items = [i for p in all_price_pages(emu) for i in p["Items"]]
    required = {
        "currencyCode",
        "tierMinimumUnits",
        "retailPrice",
        "unitPrice",
        "armRegionName",
        "location",
        "effectiveStartDate",
        "meterId",
        "meterName",
        "productId",
        "skuId",
        "productName",
        "skuName",
        "serviceName",
        "serviceId",
        "serviceFamily",
        "unitOfMeasure",
        "type",
        "isPrimaryMeterRegion",
        "armSkuName",
    }
    assert all(required <= i.keys() for i in items)
    skus = {i["armSkuName"] for i in items}
    assert {
        "Standard_NC24ads_A100_v4",
        "Standard_D2s_v3",
        "Standard_D14",
        "Standard_DS14",
        "Basic_A1",
    } <= skus
    shared = {i["armSkuName"] for i in items if i["meterName"] == "D14/DS14 Spot"}
    assert shared == {"Standard_D14", "Standard_DS14"}
    assert any(i["productName"].endswith(" Windows") for i in items)
    assert any(
        i["meterName"].endswith(" Low Priority") and i["skuName"].endswith(" Low Priority") for i in items
    )
    assert any(i["meterName"].endswith(" Spot") and i["skuName"].endswith(" Spot") for i in items)
    assert any("Expired" in i["meterName"] for i in items)
    assert {"usgovvirginia", "chinanorth2"} <= {i["armRegionName"] for i in items}
    assert ("germanywestcentral", "DE West Central") in {(i["armRegionName"], i["location"]) for i in items}
    now = T0.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert any(i["effectiveStartDate"] > now for i in items)  # future price
    assert any(i.get("effectiveEndDate", "9999") < now for i in items)  # ended price
    assert any(i["retailPrice"] == 0 and "Spot" not in i["meterName"] for i in items)
    linux = [i for i in items if not i["productName"].endswith(" Windows")]
    assert all(i["type"] == "Consumption" for i in linux)
    assert any(i["type"] == "DevTestConsumption" for i in items)  # Windows Dev/Test rates
    linux_spot = {(i["armRegionName"], i["armSkuName"]) for i in linux if i["meterName"].endswith(" Spot")}
    linux_od = {
        (i["armRegionName"], i["armSkuName"])
        for i in linux
        if not i["meterName"].endswith(("Spot", "Priority"))
    }
    assert linux_spot - linux_od  # spot-only offers
    keys = [(i["armRegionName"], i["armSkuName"], i["meterName"], i["productName"]) for i in items]
    assert len(keys) > len(set(keys))  # superseded / future / ended prices share a key with the current one


def test_price_pages_of_100_items_on_the_knob(emu: AzureEmulator) -> None:
    emu.configure(price_page_size=100)
    pages = all_price_pages(emu)
    assert [len(p["Items"]) for p in pages[:-1]] == [100] * (len(pages) - 1) and len(pages) > 10
    assert pages[0]["NextPageLink"].endswith("&$skip=100") and pages[1]["NextPageLink"].endswith("&$skip=200")
    assert "%20" in pages[0]["NextPageLink"] and "%24" not in pages[0]["NextPageLink"]
    assert [i for p in pages for i in p["Items"]] == price_list.price_items(key_at(T0))
    assert emu.stats()["price_urls"][1] == pages[0]["NextPageLink"].removeprefix(emu.base_url)


def test_price_links_can_end_early_on_the_knob(emu: AzureEmulator) -> None:
    emu.configure(price_links_end_after=2)
    first = get_prices(emu).json()
    second = requests.get(first["NextPageLink"], timeout=10).json()
    assert len(second["Items"]) == 1000 and second["NextPageLink"] is None
    assert len(get_prices(emu, skip=2000).json()["Items"]) > 0  # the items are still there


def test_boundary_row_is_repeated_on_the_next_page(emu: AzureEmulator) -> None:
    emu.configure(boundary_repeat_rate=1.0)
    first, second = get_prices(emu).json(), get_prices(emu, skip=1000).json()
    assert second["Items"][0] == first["Items"][-1]
    assert second["Count"] == len(second["Items"]) == min(1000, price_list.price_count(7, "small") - 1000) + 1


@pytest.mark.parametrize(
    "flt",
    [
        "serviceName eq 'Storage' and priceType eq 'Consumption'",
        "serviceName eq 'Virtual Machines' or priceType eq 'Consumption'",
        "",
    ],
)
def test_unknown_price_filter_is_a_400_json_error(emu: AzureEmulator, flt: str) -> None:
    r = get_prices(emu, flt=flt)
    assert r.status_code == 400 and "filter" in r.json()["error"]["message"]


def test_price_bursts_are_throttled_with_retry_after_header(emu: AzureEmulator) -> None:
    emu.configure(prices_requests_per_second=3, retry_after_seconds=0)
    answers = [get_prices(emu, skip=5000) for _ in range(6)]
    throttled = [r for r in answers if r.status_code == 429]
    assert throttled and all(r.headers["x-ms-ratelimit-retailprices-retry-after"] == "0" for r in throttled)
    assert emu.stats()["throttled"]["prices"] == len(throttled)
    time.sleep(1.05)
    assert get_prices(emu, skip=5000).status_code == 200


def test_same_seed_and_epoch_answer_byte_identically(emu: AzureEmulator) -> None:
    first = get_prices(emu, skip=0).content
    emu.set_time(T0 + timedelta(minutes=4))  # same 10-minute epoch
    assert get_prices(emu, skip=0).content == first
    other = AzureEmulator(EmulatorConfig(seed=7, **QUIET), clock=lambda: T0).start()
    try:
        assert get_prices(other).json()["Items"] == json.loads(first)["Items"]
        other.configure(seed=8)
        assert get_prices(other).json()["Items"] != json.loads(first)["Items"]
    finally:
        other.stop()
    emu.set_time(T0 + timedelta(minutes=10))  # next epoch: spot prices drift
    assert get_prices(emu, skip=0).content != first


# ---- drift and overrides -------------------------------------------------------------------------


def _spot_prices(key: drift.DataKey) -> dict[int, float]:
    """Spot prices by position (the list has the same rows in every epoch)."""
    return {
        n: i["retailPrice"] for n, i in enumerate(price_list.price_items(key)) if i["meterName"].endswith(" Spot")
    }


def _evictions(key: drift.DataKey) -> dict[tuple[str, str], str]:
    return {(r["location"], r["skuName"]): r["evictionRate"] for r in drift.eviction_rows(key)}


def _scores(key: drift.DataKey) -> dict[tuple[Any, ...], str]:
    catalogue = cat.load_catalogue(7, "small")
    return {
        (c, r.code, s.name, z): drift.placement_score(key, c, r.code, s.name, z)
        for r in catalogue.regions
        if not r.sovereign
        for s in catalogue.sizes
        for z in r.zones or (None,)
        for c in drift.SCORE_COUNT_STEPS
    }


def _changed_share(series: list[dict[Any, Any]]) -> float:
    changed = sum(a[k] != b[k] for a, b in zip(series, series[1:], strict=False) for k in a)
    return changed / sum(len(a) for a in series[:-1])


@pytest.mark.parametrize("rate", [0.03, 0.2])
def test_drift_changes_about_drift_rate_of_the_series_per_epoch(rate: float) -> None:
    epochs = [drift.epoch_of(T0) + i for i in range(24)]
    keys = [drift.DataKey.make(7, "small", e, drift_rate=rate) for e in epochs]
    for values in (_spot_prices, _evictions, _scores):
        share = _changed_share([values(k) for k in keys])
        assert rate * 0.6 < share < rate * 1.4, (values.__name__, share)


def test_drift_rate_zero_never_changes_anything() -> None:
    keys = [drift.DataKey.make(7, "small", drift.epoch_of(T0) + i * 37, drift_rate=0) for i in range(5)]
    for values in (_spot_prices, _evictions, _scores):
        assert _changed_share([values(k) for k in keys]) == 0


def test_scores_never_increase_with_desired_count_and_cover_every_value() -> None:
    seen = set()
    for e in range(drift.epoch_of(T0), drift.epoch_of(T0) + 3):
        scores = _scores(drift.DataKey.make(7, "small", e))
        rank = {"High": 3, "Medium": 2, "Low": 1}
        for (c, region, size, zone), score in scores.items():
            seen.add(score)
            if c > 1 and score in rank:
                before = scores[(drift.SCORE_COUNT_STEPS[drift.count_step(c) - 1], region, size, zone)]
                assert rank.get(before, 0) >= rank[score], (region, size, zone, c)
    assert SCORES <= seen
    full = cat.load_catalogue(7, "full")
    key = drift.DataKey.make(7, "full", drift.epoch_of(T0))
    # only documented values by default: an undocumented one is a fault a test asks for with the `score` override
    assert {drift.placement_score(key, 1, o.region.code, o.size.name, None) for o in full.offers} <= SCORES


def test_overrides_change_exactly_the_named_series(emu: AzureEmulator, token: str) -> None:
    emu.configure(drift_rate=0.0)
    before_items = [i for p in all_price_pages(emu) for i in p["Items"]]
    before_rows = arg(emu, token, {"$top": 1000}).json()["data"]
    target = next(r for r in before_rows if r["evictionRate"] != "20+")
    score_body = sps_body(["westeurope"], ["Standard_D2s_v3", "Standard_F2s_v2"], count=5)
    before_scores = sps(emu, token, score_body).json()["placementScores"]
    emu.set_time(T0 + timedelta(minutes=10))
    emu.configure(
        overrides={
            "price": {"eastus|Standard_D2s_v3": 2.0, "westeurope|standard_f2s_v2": 0.5},
            "eviction": {f"{target['location']}|{target['skuName']}": "20+"},
            "score": {"westeurope|Standard_D2s_v3": "DataNotFoundOrStale"},
        }
    )
    after_items = [i for p in all_price_pages(emu) for i in p["Items"]]
    changed = {
        (a["armRegionName"], a["armSkuName"])
        for a, b in zip(before_items, after_items, strict=True)
        if a["retailPrice"] != b["retailPrice"]
    }
    assert changed == {("eastus", "Standard_D2s_v3"), ("westeurope", "Standard_F2s_v2")}
    after_rows = arg(emu, token, {"$top": 1000}).json()["data"]
    diff = [b for a, b in zip(before_rows, after_rows, strict=True) if a != b]
    assert diff == [{**target, "evictionRate": "20+"}]
    after_scores = sps(emu, token, score_body).json()["placementScores"]
    changed_scores = {
        (a["sku"], a.get("availabilityZone"))
        for a, b in zip(before_scores, after_scores, strict=True)
        if a != b
    }
    assert {sku for sku, _ in changed_scores} <= {"Standard_D2s_v3"}
    assert all(s["score"] == "DataNotFoundOrStale" for s in after_scores if s["sku"] == "Standard_D2s_v3")


def test_unknown_knobs_and_bad_values_are_refused_by_name(emu: AzureEmulator) -> None:
    with pytest.raises(ValueError, match="colour"):
        emu.configure(colour="blue")
    with pytest.raises(ValueError, match="rate_500"):
        emu.configure(rate_500=2)
    with pytest.raises(ValueError, match="overrides"):
        emu.configure(overrides={"prices": {}})
    bad_values = {
        "sps_subscription_calls_per_hour": -1,
        "sps_subscriptions_without_role": 4,
        "sps_extra_locations": ["eastus"],
        "price_page_size": 1001,
        "price_links_end_after": -1,
        "arg_rows_per_page": 0,
        "arg_unstable_unsorted_paging": "yes",
        "arg_result_truncated": 1,
        "arg_sku_name_path": "sku",
        "eviction_rate_style": "percentage",
    }
    for knob, value in bad_values.items():
        with pytest.raises(ValueError, match=knob):
            emu.configure(**{knob: value})
        r = requests.post(f"{emu.base_url}/_emulator/config", json={knob: value}, timeout=5)
        assert r.status_code == 400 and knob in r.json()["error"]["message"]


# ---- Resource Graph ------------------------------------------------------------------------------


def test_resource_graph_needs_a_bearer_token(emu: AzureEmulator) -> None:
    assert arg(emu, None, {"$top": 10}).status_code == 401
    r = arg(emu, "not-a-token", {"$top": 10})
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_resource_graph_pages_with_skip_token_and_reports_quota(emu: AzureEmulator, token: str) -> None:
    emu.configure(arg_quota_per_5s=15)
    rows, options, remaining = [], {"$top": 50}, []
    while True:
        r = arg(emu, token, options)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == len(body["data"]) and body["resultTruncated"] == "false"
        rows += body["data"]
        remaining.append(int(r.headers["x-ms-user-quota-remaining"]))
        assert r.headers["x-ms-user-quota-resets-after"].count(":") == 2
        if "$skipToken" not in body:
            break
        options = {"$top": 50, "$skipToken": body["$skipToken"]}
    assert body["totalRecords"] == len(rows) == len(drift.eviction_rows(key_at(T0))) > 100
    assert rows == list(drift.eviction_rows(key_at(T0)))
    assert remaining == list(range(14, 14 - len(remaining), -1))
    assert {r["evictionRate"] for r in rows} <= set(drift.EVICTION_BUCKETS)
    assert all(r["skuName"] == r["skuName"].lower() and "_" in r["skuName"] for r in rows)
    assert not {r["location"] for r in rows} & set(cat.sovereign_region_codes())


SORTED_QUERY = (
    "SpotResources | where type =~ 'microsoft.compute/skuspotevictionrate/location' "
    "| project id, location, skuName = tostring(sku.name), evictionRate = tostring(properties.evictionRate) "
    "| order by id asc"
)


def all_arg_rows(emu: AzureEmulator, token: str, query: str, top: int = 1000) -> tuple[list[dict], list[dict]]:
    """Every row of every $skipToken page, and the page bodies."""
    rows, bodies, options = [], [], {"$top": top}
    while True:
        r = arg(emu, token, options, query=query)
        assert r.status_code == 200, r.text
        bodies.append(r.json())
        rows += bodies[-1]["data"]
        if "$skipToken" not in bodies[-1]:
            return rows, bodies
        options = {"$top": top, "$skipToken": bodies[-1]["$skipToken"]}


def test_resource_graph_rows_carry_their_id_and_sort_by_it(emu: AzureEmulator, token: str) -> None:
    rows, _ = all_arg_rows(emu, token, SORTED_QUERY)
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) == len(drift.eviction_rows(key_at(T0)))
    assert ids[0].startswith("/providers/Microsoft.Compute/skuSpotEvictionRate/")
    assert {(r["location"], r["skuName"], r["evictionRate"]) for r in rows} == {
        (r["location"], r["skuName"], r["evictionRate"]) for r in drift.eviction_rows(key_at(T0))
    }


def test_resource_graph_pages_move_rows_unless_sorted_by_id(emu: AzureEmulator, token: str) -> None:
    """With the knob, the pages of an unsorted query repeat some rows and never serve others (same count); the
    pages of a query sorted by id stay stable."""
    emu.configure(arg_unstable_unsorted_paging=True, arg_rows_per_page=30)
    unsorted, bodies = all_arg_rows(emu, token, EVICTION_QUERY)
    every = list(drift.eviction_rows(key_at(T0)))
    keys = [(r["location"], r["skuName"]) for r in unsorted]
    assert len(bodies) > 2 and all(b["count"] == len(b["data"]) <= 30 for b in bodies)
    assert len(unsorted) == len(every) == bodies[0]["totalRecords"]
    assert len(set(keys)) < len(keys)  # repeated ...
    assert {(r["location"], r["skuName"]) for r in every} - set(keys)  # ... and missing
    stable, _ = all_arg_rows(emu, token, SORTED_QUERY)
    assert len({r["id"] for r in stable}) == len(stable) == len(every)


def test_resource_graph_truncated_answer_has_no_skip_token(emu: AzureEmulator, token: str) -> None:
    emu.configure(arg_result_truncated=True)
    body = arg(emu, token, {"$top": 1000}, query=SORTED_QUERY).json()
    assert body["resultTruncated"] == "true" and "$skipToken" not in body
    assert body["count"] == len(body["data"]) < body["totalRecords"] == len(drift.eviction_rows(key_at(T0)))


def test_resource_graph_size_name_paths_and_percent_buckets(emu: AzureEmulator, token: str) -> None:
    legacy_path = EVICTION_QUERY  # reads props.skuName
    emu.configure(arg_sku_name_path="sku.name")
    assert arg(emu, token, {"$top": 1000}, query=legacy_path).json()["data"] == []
    assert len(arg(emu, token, {"$top": 1000}, query=SORTED_QUERY).json()["data"]) > 100
    emu.configure(arg_sku_name_path="properties.skuName")
    assert arg(emu, token, {"$top": 1000}, query=SORTED_QUERY).json()["totalRecords"] == 0
    emu.configure(arg_sku_name_path="both", eviction_rate_style="percent")
    rates = {r["evictionRate"] for r in arg(emu, token, {"$top": 1000}, query=SORTED_QUERY).json()["data"]}
    assert rates == {"0%-5%", "5%-10%", "10%-15%", "15%-20%", "20+%"}
    assert emu.stats()["resource_graph_queries"] == {legacy_path: 1, SORTED_QUERY: 3}


def test_resource_graph_refuses_other_queries_and_large_pages(emu: AzureEmulator, token: str) -> None:
    assert arg(emu, token, {"$top": 10}, query="resources | take 1").status_code == 400
    assert arg(emu, token, {"$top": 1001}).status_code == 400


def test_resource_graph_quota_answers_rate_limiting(emu: AzureEmulator, token: str) -> None:
    emu.configure(arg_quota_per_5s=3)
    answers = [arg(emu, token, {"$top": 1}) for _ in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    assert answers[3].json()["error"]["code"] == "RateLimiting"
    assert answers[3].headers["x-ms-user-quota-remaining"] == "0"
    assert emu.stats()["throttled"]["resource_graph"] == 2


# ---- Spot Placement Scores -----------------------------------------------------------------------


def test_sps_answers_scores_per_zone_with_an_echo(emu: AzureEmulator, token: str) -> None:
    catalogue = cat.load_catalogue(7, "small")
    zoned = [r.code for r in catalogue.regions if r.zones and not r.sovereign]
    flat = [r.code for r in catalogue.regions if not r.zones and not r.sovereign]
    body = sps_body([zoned[0], flat[0]], ["Standard_D2s_v3", "Standard_NC24ads_A100_v4"], count=10)
    r = sps(emu, token, body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert {k: answer[k] for k in body} == body
    scores = answer["placementScores"]
    assert len(scores) == 2 * (3 + 1)
    assert {s.get("availabilityZone") for s in scores if s["region"] == zoned[0]} == {"1", "2", "3"}
    assert all("availabilityZone" not in s for s in scores if s["region"] == flat[0])
    assert all(isinstance(s["isQuotaAvailable"], bool) and s["score"] for s in scores)
    key = key_at(T0)
    assert all(
        s["score"] == drift.placement_score(key, 10, s["region"], s["sku"], s.get("availabilityZone"))
        for s in scores
    )


def test_sps_needs_a_token_and_a_known_subscription(emu: AzureEmulator, token: str) -> None:
    body = sps_body(["eastus"], ["Standard_D2s_v3"])
    assert sps(emu, None, body).status_code == 401
    r = sps(emu, token, body, sub="00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and r.json()["error"]["code"] == "SubscriptionNotFound"


def test_sps_error_location_lists_the_supported_locations(emu: AzureEmulator, token: str) -> None:
    r = sps(emu, token, sps_body(["eastus"], ["Standard_D2s_v3"]), location="ERROR_LOCATION")
    assert r.status_code == 400
    assert "supported locations are 'eastus, eastus2, westus, westus2'" in r.json()["error"]["message"]
    emu.configure(url_locations=6)
    message = sps(emu, token, {}, location="ERROR_LOCATION").json()["error"]["message"]
    assert "'eastus, eastus2, westus, westus2, westus3, centralus'" in message
    assert emu.stats()["sps_calls"] == {}


def test_sps_limits_locations_and_sizes(emu: AzureEmulator, token: str) -> None:
    regions = cat.public_region_codes()
    too_many_regions = sps(emu, token, sps_body(regions[:9], ["Standard_D2s_v3"]))
    too_many_sizes = sps(emu, token, sps_body(["eastus"], list(cat.SMALL_SIZES[:6])))
    for r in (too_many_regions, too_many_sizes):
        assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidParameter"
    assert sps(emu, token, sps_body(regions[:8], list(cat.SMALL_SIZES[:5]))).status_code == 200


@pytest.mark.parametrize(
    ("locations", "sizes", "planted", "bad", "parameter"),
    [
        (
            ["eastus", "usgovvirginia", "atlantis"],
            ["Standard_D2s_v3"],
            {},
            "usgovvirginia",
            "desiredLocations",
        ),
        (["eastus", "Atlantis"], ["Standard_D2s_v3"], {}, "Atlantis", "desiredLocations"),
        (
            ["eastus", "westus2"],
            ["Standard_D2s_v3"],
            {"invalid_regions": ["westus2"]},
            "westus2",
            "desiredLocations",
        ),
        (
            ["eastus"],
            ["Standard_D2s_v3", "Standard_Z9_v9", "Standard_Q1"],
            {},
            "Standard_Z9_v9",
            "SpotPlacementRecommenderInput.desiredSizes",
        ),
        (
            ["eastus"],
            ["Standard_B1ms", "Standard_D2s_v3"],
            {"invalid_sizes": ["standard_d2s_v3"]},
            "Standard_D2s_v3",
            "SpotPlacementRecommenderInput.desiredSizes",
        ),
        (["atlantis"], ["Standard_Z9_v9"], {}, "atlantis", "desiredLocations"),
    ],
)
def test_sps_names_the_first_invalid_region_or_size(
    emu: AzureEmulator,
    token: str,
    locations: list[str],
    sizes: list[str],
    planted: dict[str, list[str]],
    bad: str,
    parameter: str,
) -> None:
    emu.configure(**planted)
    r = sps(emu, token, sps_body(locations, sizes))
    assert r.status_code == 400
    assert (
        r.json()["error"]["message"]
        == f"The value '{bad}' provided for the input parameter '{parameter}' is not valid"
    )


def test_sps_hourly_limit_per_pair_on_the_emulator_clock(emu: AzureEmulator, token: str) -> None:
    emu.configure(sps_calls_per_hour=3)
    body = sps_body(["eastus"], ["Standard_D2s_v3"])
    subs = emu.credentials["subscriptions"]
    codes = []
    for _ in range(5):
        r = sps(emu, token, body)
        codes.append(r.status_code)
        emu.advance(60)
    assert codes == [200, 200, 200, 429, 429]
    assert r.text == SPS_THROTTLE_TEXT and r.headers["Content-Type"].startswith("text/plain")
    assert sps(emu, token, body, sub=subs[1]).status_code == 200  # another pair has its own quota
    assert sps(emu, token, body, location="eastus2").status_code == 200
    emu.advance(56 * 60)  # 61 minutes after the first call: it left the 60-minute window, the second too
    assert [sps(emu, token, body).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]  # throttled calls never counted
    stats = emu.stats()
    assert stats["throttled"]["sps"] == 3
    assert len(stats["sps_calls"][f"{subs[0]}/eastus"]) == 5
    assert stats["max_calls_in_any_62_minutes"] == 5  # why the collector keeps to 10 calls in 62 minutes
    assert stats["sps_calls"][f"{subs[0]}/eastus"][0] == T0.isoformat()


def test_sps_subscription_without_the_role_answers_403_on_every_call(emu: AzureEmulator, token: str) -> None:
    emu.configure(sps_subscriptions_without_role=1)
    subs = emu.credentials["subscriptions"]
    body = sps_body(["eastus"], ["Standard_D2s_v3"])
    for location in ("eastus", "eastus2"):
        r = sps(emu, token, body, sub=subs[-1], location=location)
        assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed"
        assert "Microsoft.Compute/locations/placementScores/generate/action" in r.json()["error"]["message"]
    assert sps(emu, token, body, sub=subs[0]).status_code == 200
    # the supported-locations answer does not depend on the role
    assert sps(emu, token, body, sub=subs[-1], location="ERROR_LOCATION").status_code == 400
    assert list(emu.stats()["sps_calls"]) == [f"{subs[0]}/eastus"]
    assert [a["status"] for a in emu.stats()["sps_answers"]] == [403, 403, 200, 400]


def test_sps_subscription_wide_limit_answers_429_with_retry_after(emu: AzureEmulator, token: str) -> None:
    emu.configure(sps_subscription_calls_per_hour=3)
    subs, body = emu.credentials["subscriptions"], sps_body(["eastus"], ["Standard_D2s_v3"])
    codes = []
    for location in ("eastus", "eastus2", "westus", "westus2"):
        r = sps(emu, token, body, location=location)
        codes.append(r.status_code)
        emu.advance(60)
    assert codes == [200, 200, 200, 429]  # every location of the subscription counts
    assert r.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert r.headers["Retry-After"] == str(3600 - 3 * 60) and "try again after '3420' seconds" in r.text
    assert sps(emu, token, body, sub=subs[1], location="westus2").status_code == 200  # another subscription
    emu.advance(3420)
    assert sps(emu, token, body, location="westus2").status_code == 200
    assert emu.stats()["throttled"]["sps_subscription"] == 1


def test_sps_lists_non_public_locations_on_the_knob_and_refuses_calls_there(emu: AzureEmulator, token: str) -> None:
    emu.configure(sps_extra_locations=["eastusstage", "msftwestus"])
    body = sps_body(["eastus"], ["Standard_D2s_v3"])
    message = sps(emu, token, body, location="ERROR_LOCATION").json()["error"]["message"]
    assert "'eastus, eastus2, westus, westus2, eastusstage, msftwestus'" in message
    r = sps(emu, token, body, location="eastusstage")
    assert r.status_code == 400 and r.json()["error"]["code"] == "LocationNotAvailableForResourceType"
    assert emu.stats()["sps_calls"] == {}


# ---- login ---------------------------------------------------------------------------------------


def test_azure_identity_gets_a_token_that_the_management_api_accepts(emu: AzureEmulator) -> None:
    c = emu.credentials
    credential = ClientSecretCredential(
        c["tenant_id"],
        c["client_id"],
        c["client_secret"],
        authority=emu.authority,
        disable_instance_discovery=True,
        connection_verify=emu.ca_file,
    )
    access = credential.get_token("https://management.azure.com/.default")
    assert 3000 < access.expires_on - time.time() <= 3600
    assert arg(emu, access.token, {"$top": 1}).status_code == 200
    wrong = ClientSecretCredential(
        c["tenant_id"],
        c["client_id"],
        "wrong-secret",
        authority=emu.authority,
        disable_instance_discovery=True,
        connection_verify=emu.ca_file,
    )
    with pytest.raises(ClientAuthenticationError) as failure:
        wrong.get_token("https://management.azure.com/.default")
    assert "wrong-secret" not in str(failure.value)


def test_token_endpoint_refuses_a_wrong_client(emu: AzureEmulator) -> None:
    c = emu.credentials
    r = requests.post(
        f"https://{emu.authority}/{c['tenant_id']}/oauth2/v2.0/token",
        verify=emu.ca_file,
        timeout=10,
        data={"grant_type": "client_credentials", "client_id": "someone", "client_secret": "x"},
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert emu.credentials["client_secret"] not in r.text


# ---- faults --------------------------------------------------------------------------------------


def test_fault_rates_are_roughly_as_set_and_counted(emu: AzureEmulator) -> None:
    emu.configure(rate_429=0.2, rate_500=0.3, retry_after_seconds=0)
    codes = [get_prices(emu, skip=5000).status_code for _ in range(300)]
    assert 0.12 < codes.count(429) / 300 < 0.28 and 0.22 < codes.count(500) / 300 < 0.38
    assert codes.count(200) == 300 - codes.count(429) - codes.count(500)
    faults = emu.stats()["faults"]
    assert (faults["429"], faults["500"]) == (codes.count(429), codes.count(500))
    assert emu.stats()["throttled"]["prices"] == 0


def test_malformed_timeout_and_latency_faults(emu: AzureEmulator, token: str) -> None:
    emu.configure(rate_malformed=1.0)
    r = get_prices(emu)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    emu.configure(rate_malformed=0.0, rate_timeout=1.0, timeout_seconds=0.3)
    started = time.monotonic()
    assert arg(emu, token, {"$top": 1}).status_code == 504
    assert time.monotonic() - started >= 0.3
    emu.configure(rate_timeout=0.0, latency_ms=200)
    started = time.monotonic()
    assert get_prices(emu, skip=5000).status_code == 200 and time.monotonic() - started >= 0.2


def test_faulted_sps_calls_use_no_quota(emu: AzureEmulator, token: str) -> None:
    emu.configure(rate_429=1.0, retry_after_seconds=7)
    r = sps(emu, token, sps_body(["eastus"], ["Standard_D2s_v3"]))
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    emu.configure(rate_429=0.0, rate_500=1.0)
    assert (
        sps(emu, token, sps_body(["eastus"], ["Standard_D2s_v3"])).json()["error"]["code"]
        == "InternalServerError"
    )
    assert emu.stats()["sps_calls"] == {} and emu.stats()["faults"]["429"] == 1


# ---- admin HTTP ----------------------------------------------------------------------------------


def test_admin_endpoints_drive_knobs_clock_and_stats(emu: AzureEmulator) -> None:
    base = f"{emu.base_url}/_emulator"
    r = requests.post(
        f"{base}/config", json={"drift_rate": 0.1, "invalid_sizes": ["Standard_B1ms"]}, timeout=5
    )
    assert (
        r.status_code == 200
        and r.json()["drift_rate"] == 0.1
        and emu.config.invalid_sizes == ["Standard_B1ms"]
    )
    bad = requests.post(f"{base}/config", json={"nonsense": 1}, timeout=5)
    assert bad.status_code == 400 and "nonsense" in bad.json()["error"]["message"]
    assert requests.get(f"{base}/config", timeout=5).json()["drift_rate"] == 0.1
    r = requests.post(f"{base}/clock", json={"now": "2026-05-01T12:00:00+00:00"}, timeout=5)
    assert r.json()["now"] == "2026-05-01T12:00:00+00:00"
    r = requests.post(f"{base}/clock", json={"advance_seconds": 90}, timeout=5)
    assert r.json()["now"] == "2026-05-01T12:01:30+00:00" and emu.now() == datetime(
        2026, 5, 1, 12, 1, 30, tzinfo=UTC
    )
    get_prices(emu, skip=5000)
    assert requests.get(f"{base}/stats", timeout=5).json()["requests"]["prices"] == 1
    assert requests.post(f"{base}/reset-stats", timeout=5).json()["requests"] == {}
    requests.post(f"{base}/clock", json={"now": None}, timeout=5)
    assert abs(emu.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_family_data_file_loads_and_covers_every_size_the_catalogue_uses() -> None:
    from importlib import resources

    data = json.loads(resources.files("spotlake_assets.local").joinpath(cat.FAMILIES_FILE).read_text())
    families = tuple((f["series"], f["template"], tuple(f["numbers"]), f["rate"]) for f in data["families"])
    assert cat._FAMILIES == families
    assert all(isinstance(f["rate"], float) and f["numbers"] for f in data["families"])
    shared = data["shared_meter"]
    assert (cat._SHARED_METER_SIZES, cat._SHARED_METER_RATE) == (tuple(map(tuple, shared["sizes"])), shared["rate"])
    full = cat.load_catalogue(7, "full")
    names = {s.name for s in full.sizes}
    assert len(names) == len(full.sizes)  # no two families make the same size
    assert set(cat.SMALL_SIZES) <= names and cat.CORE_SIZES <= names
    assert {s.series for s in full.sizes} == {f["series"] for f in data["families"]} | {"D", "DS"}


# ---- full scale ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_scale_catalogue_counts() -> None:
    started = time.perf_counter()
    full = cat.load_catalogue(7, "full")
    key = drift.DataKey.make(7, "full", drift.epoch_of(T0))
    n_items, n_rows = price_list.price_count(7, "full"), len(drift.eviction_rows(key))
    page = price_list.price_page(key, 100_000, 101_000)
    elapsed = time.perf_counter() - started
    print(
        f"full scale: {len(full.regions)} regions, {len(full.sizes)} sizes, {n_items} price items, "
        f"{n_rows} eviction rows generated in {elapsed:.1f} s"
    )
    assert len(full.regions) == 63 and sum(r.sovereign for r in full.regions) == 9
    assert 650 <= len(full.sizes) <= 750
    assert 150_000 <= n_items <= 400_000 and 10_000 <= n_rows <= 60_000
    assert len(page) == 1000
    assert len(full.offers) < len(full.regions) * len(full.sizes)  # not every size everywhere
    assert {"Standard_NC24ads_A100_v4", "Standard_D2s_v3", "Standard_D14", "Standard_DS14", "Basic_A1"} <= {
        s.name for s in full.sizes
    }
