"""Each cleaning rule of docs/contract.md "Prices", with small hand-made items."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from spotlake_assets.core.transforms.price import PRICE_COLUMNS, clean_prices, items_frame

AT = datetime(2026, 11, 28, 10, 20, tzinfo=UTC)


def item(sku="Standard_D2s_v3", region="eastus", location="US East", price=0.1, spot=False, **kw):
    meter = kw.pop("meter", sku.split("_", 1)[-1].replace("_", " "))
    meter_name = f"{meter} Spot" if spot else meter
    base = {
        "meterId": kw.pop("meterId", f"m-{sku}-{spot}"),
        "skuId": f"s-{sku}-{region}-{spot}",
        "productId": "p1",
        "productName": kw.pop("productName", "Virtual Machines DSv3 Series"),
        "meterName": kw.pop("meterName", meter_name),
        "skuName": meter_name,
        "location": location,
        "armRegionName": region,
        "armSkuName": sku,
        "retailPrice": price,
        "tierMinimumUnits": 0.0,
        "type": "Consumption",
        "effectiveStartDate": "2026-01-01T00:00:00Z",
        "effectiveEndDate": None,
    }
    base.update(kw)
    return base


def clean(items):
    return clean_prices(items_frame(items), AT)


def one(table, **where):
    rows = table
    for col, value in where.items():
        rows = rows[rows[col] == value]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_join_savings_and_columns():
    t = clean([item(price=0.2), item(price=0.05, spot=True)])
    assert list(t.columns) == PRICE_COLUMNS
    row = one(t, InstanceType="D2s_v3")
    assert (row.InstanceTier, row.Region, row.armRegionName) == ("Standard", "US East", "eastus")
    assert row.OndemandPrice == 0.2 and row.SpotPrice == 0.05
    assert row.Savings == pytest.approx(75.0)


def test_windows_low_priority_and_expired_dropped():
    t = clean(
        [
            item(price=0.2),
            item(price=0.05, spot=True),
            item(price=9.0, spot=True, productName="Virtual Machines DSv3 Series Windows", skuId="w"),
            item(sku="Standard_E2s_v3", price=0.01, meterName="E2s v3 Low Priority", skuName="E2s v3 Low Priority"),
            item(sku="Standard_F2s_v2", price=0.01, spot=True, meterName="F2s v2 Spot Expired"),
        ]
    )
    assert list(t["InstanceType"]) == ["D2s_v3"]
    assert t["SpotPrice"].iloc[0] == 0.05  # not the Windows spot price


def test_sovereign_regions_out_by_code_and_germany_west_central_in():
    regions = [
        ("usgovvirginia", "US Gov Virginia"),
        ("usdodeast", "US DoD East"),
        ("chinaeast2", "CN East 2"),
        ("germanycentral", "DE Central"),
        ("germanynortheast", "DE Northeast"),
        ("germanywestcentral", "DE West Central"),
        ("eastus", "US East"),
    ]
    t = clean([item(region=code, location=name, price=0.05, spot=True) for code, name in regions])
    assert sorted(t["armRegionName"]) == ["eastus", "germanywestcentral"]


def test_spot_without_ondemand_kept_ondemand_only_dropped_and_zero_is_missing():
    t = clean(
        [
            item(sku="Standard_D2s_v3", price=0.05, spot=True),  # spot only
            item(sku="Standard_E2s_v3", price=0.3),  # on-demand only: no spot price, dropped
            item(sku="Standard_F2s_v2", price=0.0),
            item(sku="Standard_F2s_v2", price=0.02, spot=True),  # on-demand price 0 -> missing
        ]
    )
    assert sorted(t["InstanceType"]) == ["D2s_v3", "F2s_v2"]
    for size in ("D2s_v3", "F2s_v2"):
        row = one(t, InstanceType=size)
        assert pd.isna(row.OndemandPrice) and pd.isna(row.Savings)


def test_shared_meter_joins_each_size():
    t = clean(
        [
            item(sku="Standard_D14", meter="D14/DS14", price=1.0),
            item(sku="Standard_D14", meter="D14/DS14", price=0.2, spot=True),
            item(sku="Standard_DS14", meter="D14/DS14", price=1.1),
            item(sku="Standard_DS14", meter="D14/DS14", price=0.25, spot=True),
        ]
    )
    assert one(t, InstanceType="D14").OndemandPrice == 1.0
    assert one(t, InstanceType="DS14").SpotPrice == 0.25


def test_tier_split_and_basic_tier():
    t = clean(
        [
            item(sku="Standard_NC24ads_A100_v4", price=0.9, spot=True),
            item(sku="Basic_A1", price=0.01, spot=True),
            item(sku="Premium_X1", price=0.02, spot=True),  # not a tier we know: tier missing, type is the whole name
        ]
    )
    assert one(t, InstanceType="NC24ads_A100_v4").InstanceTier == "Standard"
    assert one(t, InstanceType="A1").InstanceTier == "Basic"
    assert pd.isna(one(t, InstanceType="Premium_X1").InstanceTier)


def test_join_is_case_insensitive_and_keeps_azure_spelling():
    t = clean(
        [
            item(sku="Standard_NC24ads_A100_v4", price=4.0, meter="NC24ads A100 v4"),
            item(sku="standard_nc24ads_a100_v4", price=0.9, spot=True, meter="nc24ads a100 v4", location="us east"),
        ]
    )
    row = one(t, armRegionName="eastus")
    assert row.OndemandPrice == 4.0 and row.SpotPrice == 0.9


def test_price_effective_at_partition_time_is_chosen():
    t = clean(
        [
            item(price=0.05, spot=True, effectiveStartDate="2026-01-01T00:00:00Z"),
            item(price=0.04, spot=True, effectiveStartDate="2026-06-01T00:00:00Z", skuId="newer"),
            item(price=0.01, spot=True, effectiveStartDate="2026-12-01T00:00:00Z", skuId="future"),
            item(price=0.02, spot=True, effectiveStartDate="2026-07-01T00:00:00Z", skuId="ended",
                 effectiveEndDate="2026-11-01T00:00:00Z"),
        ]
    )
    assert one(t, InstanceType="D2s_v3").SpotPrice == 0.04


def test_choice_does_not_depend_on_arrival_order():
    items = [
        item(price=0.2),
        item(price=0.05, spot=True),
        item(price=0.07, spot=True, meter="D2s v3 Promo", meterId="promo", skuId="promo"),
        item(price=0.05, spot=True, location="US East", skuId="dup-page-boundary"),
    ]
    first = clean(items)
    for order in ([3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]):
        pd.testing.assert_frame_equal(clean([items[i] for i in order]), first)
    row = one(first, InstanceType="D2s_v3")
    # the row with an on-demand price wins over the cheaper-looking one without
    assert (row.SpotPrice, row.OndemandPrice) == (0.05, 0.2)


def test_paging_repeats_are_deduplicated_on_composite_key():
    spot = item(price=0.05, spot=True)
    t = clean([item(price=0.2), spot, dict(spot)])
    assert len(t) == 1


def test_empty_input_gives_typed_empty_table():
    t = clean([])
    assert list(t.columns) == PRICE_COLUMNS and t.empty
    assert str(t["SpotPrice"].dtype) == "float64"


def test_only_consumption_items_count():
    t = clean(
        [
            item(price=0.2),
            item(price=0.05, spot=True),
            item(price=0.01, spot=True, type="DevTestConsumption", skuId="devtest"),
        ]
    )
    assert one(t, InstanceType="D2s_v3").SpotPrice == 0.05
