"""The public files built from frames: latest JSON rows, deterministic CSV.gz, the grow-only selector and the
web site's grow-only association file."""

from __future__ import annotations

import gzip
import io
import json

import pandas as pd
import pytest

from spotlake_assets.core.transforms.outputs import (
    latest_frame,
    latest_json,
    merge_association,
    merge_selector,
    snapshot_csv_gz,
)
from spotlake_assets.core.transforms.state import MARKET_COLUMNS, ROW_COLUMNS, WORKLOAD_COLUMNS, make_state


def row(size: str, zone: str, count: int, t2: int = 0, t3: int = 0, region: str = "US East") -> dict:
    return {
        "InstanceTier": "Standard", "InstanceType": size, "Region": region, "OndemandPrice": 0.1,
        "SpotPrice": 0.02, "Savings": 80.0, "IF": 3.0, "DesiredCount": count, "AvailabilityZone": zone,
        "Score": 3, "Time": "2026-11-28 10:20:00", "T2": t2, "T3": t3,
    }  # fmt: skip


def state(series: list[dict], workloads: list[list], listed: list[str] | None = None) -> object:
    """A state whose markets are the series' (tier, type, region), or only the sizes in `listed`."""
    markets = {(r["InstanceTier"], r["InstanceType"], r["Region"]) for r in series}
    if listed is not None:
        markets = {m for m in markets if m[1] in listed}
    return make_state(
        pd.DataFrame(series),
        pd.DataFrame(workloads, columns=WORKLOAD_COLUMNS),
        pd.DataFrame([[*m, "eastus", 0.1, 0.02, 80.0, 3.0] for m in sorted(markets)], columns=MARKET_COLUMNS),
    )


def test_latest_has_one_row_per_workload_at_the_smallest_count_with_current_t2_t3():
    s = state(
        [row("D2s_v3", "1", 1, 1, 1), row("D2s_v3", "1", 10, 10, 10), row("E2s_v3", "2", 5, 5, 0)],
        [["Standard", "D2s_v3", "US East", "1", 25, 20], ["Standard", "E2s_v3", "US East", "2", 5, 0]],
    )
    frame = latest_frame(s)
    assert list(frame.columns) == ROW_COLUMNS
    got = {(r.InstanceType, r.DesiredCount, r.T2, r.T3) for r in frame.itertuples()}
    # count 1 wins for D2s_v3 (with the workload's current T2/T3); E2s_v3 was asked only at 5 so far
    assert got == {("D2s_v3", 1, 25, 20), ("E2s_v3", 5, 5, 0)}


def test_latest_leaves_out_sizes_no_longer_listed():
    s = state([row("D2s_v3", "1", 1), row("E2s_v3", "1", 1)], [], listed=["D2s_v3"])
    assert list(latest_frame(s)["InstanceType"]) == ["D2s_v3"]


def test_latest_json_records_are_numbered_with_the_site_fields():
    s = state([row("D2s_v3", "1", 1), row("D2s_v3", "2", 1)], [])
    records = json.loads(latest_json(s))
    assert [r["id"] for r in records] == [1, 2]
    assert all(list(r) == ["id", *ROW_COLUMNS] for r in records)
    assert all(isinstance(r["DesiredCount"], int) and isinstance(r["SpotPrice"], float) for r in records)


def test_csv_gz_is_byte_identical_for_identical_rows_and_parses():
    rows = pd.DataFrame([row("D2s_v3", "1", 1), row("E2s_v3", "Single", 1)])[ROW_COLUMNS]
    first, second = snapshot_csv_gz(rows), snapshot_csv_gz(rows.copy())
    assert first == second
    parsed = pd.read_csv(io.BytesIO(gzip.decompress(first)))
    assert list(parsed.columns) == ROW_COLUMNS and len(parsed) == 2


def test_selector_grows_and_never_loses_a_key():
    body, added = merge_selector(None, pd.DataFrame([row("D2s_v3", "1", 1)]))
    assert added == 1
    body, added = merge_selector(body, pd.DataFrame([row("E2s_v3", "1", 1, region="US West")]))
    assert added == 1
    body, added = merge_selector(body, pd.DataFrame([row("D2s_v3", "2", 5)]))
    assert added == 0
    assert json.loads(body) == [
        {"InstanceTier": "Standard", "InstanceType": "D2s_v3", "Region": "US East"},
        {"InstanceTier": "Standard", "InstanceType": "E2s_v3", "Region": "US West"},
    ]


# --- the web site's association file -----------------------------------------------------------------


def site_form_lists(body: bytes) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """The query form's lists as the SpotLake site builds them from association_azure.json, ported line by line
    from ddps-lab/spotlake frontend/src/components/query-section.tsx (`setFilterData`, Azure branch, and
    `filterSort("AZURE")`; the older frontend/src/components/QuerySection/Query.jsx does the same):

        const azureData = assoAzure.data[0]
        Object.keys(azureData).map((inst) => {
          AZURE_INSTANCE[inst] = {...azureData[inst], Region: azureData[inst]["Region"].filter((r) => r !== "nan")}
          azureData[inst]["Region"].map((r) => {
            if (r === "nan") return
            if (!AZURE_REGION[r]) AZURE_REGION[r] = new Set()
            AZURE_REGION[r].add(inst)
          })
        })
        setInstance(Object.keys(AZURE_INSTANCE)); setRegion(["ALL", ...Object.keys(AZURE_REGION)])

    Returns (instance list, region list, regions offered once an instance is chosen: ["ALL", ...its regions]).
    axios parses the body as JSON; JS objects keep insertion order for keys that are not array indices.
    """
    azure_data = json.loads(body)[0]
    azure_instance: dict[str, dict] = {}
    azure_region: dict[str, set[str]] = {}
    for inst in azure_data:
        azure_instance[inst] = {**azure_data[inst], "Region": [r for r in azure_data[inst]["Region"] if r != "nan"]}
        for r in azure_data[inst]["Region"]:
            if r == "nan":
                continue
            azure_region.setdefault(r, set()).add(inst)
    per_instance = {inst: ["ALL", *entry["Region"]] for inst, entry in azure_instance.items()}
    return list(azure_instance), ["ALL", *azure_region], per_instance


def test_association_is_what_the_site_parses_with_the_regions_of_latest_json():
    s = state(
        [row("D2s_v3", "1", 1), row("D2s_v3", "2", 1, region="US West 2"), row("A1", "Single", 1, region="EU West"),
         row("A1", "Single", 1, region="AP Southeast")],
        [],
    )  # fmt: skip
    latest = json.loads(latest_json(s))
    body, added = merge_association(None, latest_frame(s))

    assert added == 4
    assert body == (
        b'[{"A1":{"Region":["AP Southeast","EU West"]},"D2s_v3":{"Region":["US East","US West 2"]}}]'
    )
    instances, regions, per_instance = site_form_lists(body)
    assert instances == ["A1", "D2s_v3"]
    assert regions == ["ALL", "AP Southeast", "EU West", "US East", "US West 2"]
    assert per_instance["D2s_v3"] == ["ALL", "US East", "US West 2"]
    # every region the form offers is a Region of latest_azure.json (the query takes that display name)
    assert set(regions[1:]) == {r["Region"] for r in latest}
    assert {(r["InstanceType"], r["Region"]) for r in latest} == {
        (inst, region) for inst in instances for region in per_instance[inst][1:]
    }


def test_the_issues_example_parses_and_nan_is_skipped_like_the_site_does():
    example = b'[{"A1": {"Region": ["AP Southeast", "EU West"]}, "D2s_v3": {"Region": ["US East"]}}]'
    assert site_form_lists(example)[1] == ["ALL", "AP Southeast", "EU West", "US East"]
    legacy = b'[{"A1": {"Region": ["nan", "EU West"]}, "B1s": {"Region": ["nan"]}}]'
    assert site_form_lists(legacy)[2] == {"A1": ["ALL", "EU West"], "B1s": ["ALL"]}

    body, added = merge_association(legacy, pd.DataFrame([row("A1", "1", 1, region="EU North")]))
    # "nan" is never written back; a type the site listed stays listed
    assert (json.loads(body), added) == ([{"A1": {"Region": ["EU North", "EU West"]}, "B1s": {"Region": []}}], 1)


def test_association_grows_only_is_deterministic_and_skips_missing_values():
    first = pd.DataFrame([row("D2s_v3", "1", 1), row("E2s_v3", "1", 1, region="US West")])
    body, added = merge_association(None, first)
    assert added == 2
    again, added = merge_association(body, first.iloc[::-1])
    assert (again, added) == (body, 0)  # same pairs in another order: the same bytes

    missing = pd.DataFrame(
        [row("D2s_v3", "1", 1, region="nan"), row("D2s_v3", "1", 1, region="N/A"), row("nan", "1", 1),
         {**row("F2s_v2", "1", 1), "Region": float("nan")}, {**row("F2s_v2", "1", 1), "InstanceType": None},
         row("D2s_v3", "2", 5, region="KR Central")]
    )  # fmt: skip
    grown, added = merge_association(body, missing)
    assert added == 1
    assert json.loads(grown) == [{"D2s_v3": {"Region": ["KR Central", "US East"]}, "E2s_v3": {"Region": ["US West"]}}]
    # rows that no longer carry a pair never remove it
    assert merge_association(grown, pd.DataFrame([row("E2s_v3", "1", 1, region="US West")])) == (grown, 0)


@pytest.mark.parametrize(
    "existing",
    [b"{", b"{}", b"[]", b'[["A1"]]', b'[{"A1": ["US East"]}]', b'[{"A1": {"Regions": ["US East"]}}]'],
)
def test_a_malformed_association_file_is_refused_not_replaced(existing):
    with pytest.raises(ValueError, match="existing association file"):
        merge_association(existing, pd.DataFrame([row("D2s_v3", "1", 1)]))
