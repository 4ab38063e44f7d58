"""Each rule of docs/contract.md "Interruption frequency", with small hand-made rows."""

import pandas as pd

from spotlake_assets.core.transforms.eviction import EVICTION_RATE_TO_IF, IF_COLUMNS, clean_eviction


def rows(*triples):
    return pd.DataFrame(triples, columns=["location", "skuName", "evictionRate"])


def test_mapping_of_every_rate():
    table, unknown = clean_eviction(
        rows(*[("eastus", f"standard_d{i}s_v3", r) for i, r in enumerate(EVICTION_RATE_TO_IF)])
    )
    assert unknown == 0
    assert list(table.columns) == IF_COLUMNS
    got = dict(zip(table["InstanceType"], table["IF"], strict=True))
    assert got == {"d0s_v3": 3.0, "d1s_v3": 2.5, "d2s_v3": 2.0, "d3s_v3": 1.5, "d4s_v3": 1.0}


def test_split_at_first_underscore_keeps_spelling():
    table, _ = clean_eviction(rows(("eastus", "standard_nc24ads_a100_v4", "0-5")))
    row = table.iloc[0]
    # the legacy capitalised this into 'Nc24ads_a100_v4', which joined nothing
    assert (row.InstanceTier, row.InstanceType, row.Region) == ("standard", "nc24ads_a100_v4", "eastus")


def test_sovereign_dropped_germany_west_central_kept():
    table, _ = clean_eviction(
        rows(
            ("usgovvirginia", "standard_d2s_v3", "0-5"),
            ("chinanorth2", "standard_d2s_v3", "0-5"),
            ("germanynortheast", "standard_d2s_v3", "0-5"),
            ("germanywestcentral", "standard_d2s_v3", "0-5"),
        )
    )
    assert list(table["Region"]) == ["germanywestcentral"]


def test_unknown_rate_dropped_and_counted():
    table, unknown = clean_eviction(rows(("eastus", "standard_d2s_v3", "25-30"), ("eastus", "standard_e2s_v3", "5-10")))
    assert unknown == 1
    assert list(table["InstanceType"]) == ["e2s_v3"]


def test_duplicates_resolved_by_content_not_order():
    dup = [("eastus", "standard_d2s_v3", "0-5"), ("EastUS", "Standard_D2s_v3", "20+")]
    a, _ = clean_eviction(rows(*dup))
    b, _ = clean_eviction(rows(*reversed(dup)))
    assert len(a) == 1 and a["IF"].iloc[0] == 1.0
    pd.testing.assert_frame_equal(a, b)


def test_both_spellings_of_the_buckets_give_the_same_if():
    """Azure's buckets come as '0-5' or with percent signs ('0%-5%', '20+%', '0-5%'): same IF either way."""
    plain = ["0-5", "5-10", "10-15", "15-20", "20+"]
    spellings = [["0%-5%", "5%-10%", "10%-15%", "15%-20%", "20+%"], ["0-5%", "5-10%", "10-15%", "15-20%", "20+ %"]]
    expected, _ = clean_eviction(rows(*[("eastus", f"standard_d{i}s_v3", r) for i, r in enumerate(plain)]))
    for spelled in spellings:
        table, unknown = clean_eviction(rows(*[("eastus", f"standard_d{i}s_v3", r) for i, r in enumerate(spelled)]))
        assert unknown == 0
        pd.testing.assert_frame_equal(table, expected)


def test_rows_may_carry_their_resource_id():
    frame = rows(("eastus", "standard_d2s_v3", "0-5")).assign(id="/providers/Microsoft.Compute/skuSpotEvictionRate/x")
    table, _ = clean_eviction(frame)
    assert list(table.columns) == IF_COLUMNS and len(table) == 1
