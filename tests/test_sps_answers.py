"""SPS answers: score mapping, HTTP 400 bodies, and the dataset rows of section 3."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from spotlake_assets.core.sps.answers import (
    COLUMNS,
    parse_invalid_region,
    parse_invalid_size,
    parse_supported_locations,
    parse_try_again_after,
    score_rows,
    score_value,
)

REGION_MSG = "The value 'nowhere' provided for the input parameter 'desiredLocations' is not valid."
SIZE_MSG = (
    "The value 'Standard_Z9' provided for the input parameter "
    "'SpotPlacementRecommenderInput.desiredSizes' is not valid."
)
LOCATIONS_MSG = (
    "The provided location 'ERROR_LOCATION' is not available for resource type "
    "'Microsoft.Compute/locations/placementScores'. "
    "List of supported locations are 'eastus, eastus2, westus, eastus'."
)


def wrapped(message: str) -> str:
    return json.dumps({"error": {"code": "InvalidParameter", "message": message}})


def test_score_values():
    assert [score_value(s) for s in ("High", "Medium", "Low")] == [3, 2, 1]
    others = ("RestrictedSkuNotAvailable", "DataNotFoundOrStale", "high", None, 3)
    assert [score_value(s) for s in others] == [-1] * len(others)


@pytest.mark.parametrize("wrap", [lambda m: m, wrapped, lambda m: json.dumps(wrapped(m))[1:-1]])
def test_invalid_region_and_size_are_read_from_plain_json_or_escaped_bodies(wrap):
    assert parse_invalid_region(wrap(REGION_MSG)) == "nowhere"
    assert parse_invalid_size(wrap(REGION_MSG)) is None
    assert parse_invalid_size(wrap(SIZE_MSG)) == "Standard_Z9"
    assert parse_invalid_region(wrap(SIZE_MSG)) is None


def test_other_quote_characters_are_tolerated():
    assert parse_invalid_region(REGION_MSG.replace("'", '"')) == "nowhere"
    assert parse_invalid_size(SIZE_MSG.replace("'", "\u2019")) == "Standard_Z9"


def test_supported_locations_in_order_without_repeats():
    expected = ["eastus", "eastus2", "westus"]
    assert parse_supported_locations(LOCATIONS_MSG) == expected
    assert parse_supported_locations(wrapped(LOCATIONS_MSG)) == expected
    assert parse_supported_locations("supported locations are eastus,westus.") == ["eastus", "westus"]


@pytest.mark.parametrize("parse", [parse_invalid_region, parse_invalid_size, parse_supported_locations])
def test_unrelated_bodies_give_none(parse):
    body = "You have reached the maximum number of requests allowed. Please try again after 3600 seconds."
    assert parse(body) is None
    assert parse(wrapped("InternalServerError")) is None


def test_the_wait_a_429_names_is_read_from_sps_text_or_arm_json():
    assert parse_try_again_after("You have reached the maximum number of requests allowed. Please try again after "
                                 "3600 seconds.") == 3600
    arm = ("Number of 'read' requests for subscription 'x' exceeded. Please try again after '7' seconds after "
           "additional tokens are available. Refer to https://aka.ms/arm-throttling")
    assert parse_try_again_after(json.dumps({"error": {"code": "SubscriptionRequestsThrottled", "message": arm}})) == 7
    assert parse_try_again_after(wrapped("Too many requests")) is None


def entry(region: str, sku: str, score: str, zone: str | None = None) -> dict:
    e = {"sku": sku, "region": region, "score": score, "isQuotaAvailable": True}
    if zone is not None:
        e["availabilityZone"] = zone
    return e


def test_rows_follow_section_3():
    answers = [
        {
            "placementScores": [
                entry("westus", "Standard_D2s_v3", "Medium", "2"),
                entry("eastus", "Standard_D2s_v3", "High", "1"),
                entry("eastus", "Standard_D2s_v3", "Low"),
                entry("newregion", "Standard_NC6", "RestrictedSkuNotAvailable"),
            ],
            "desiredCount": 5,
        }
    ]
    frame, unknown, _ = score_rows(answers, 5, {"eastus": "US East", "westus": "US West"}, {})
    expected = pd.DataFrame(
        [
            (5, "eastus", "US East", "Standard_D2s_v3", "Standard", "D2s_v3", "1", 3, 5, 5),
            (5, "eastus", "US East", "Standard_D2s_v3", "Standard", "D2s_v3", "Single", 1, 0, 0),
            (5, "newregion", "newregion", "Standard_NC6", "Standard", "NC6", "Single", -1, 0, 0),
            (5, "westus", "US West", "Standard_D2s_v3", "Standard", "D2s_v3", "2", 2, 0, 5),
        ],
        columns=list(COLUMNS),
    )
    pd.testing.assert_frame_equal(frame, expected)
    assert not unknown


def test_dtypes_are_stable_even_when_empty():
    frame, unknown, _ = score_rows([], 1, {}, {})
    full = score_rows([entry("eastus", "Standard_A1", "High")], 1, {}, {}).rows
    expected = {c: ("int64" if c in ("DesiredCount", "Score", "T3", "T2") else "str") for c in COLUMNS}
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 0 and not unknown
    assert {c: str(t) for c, t in frame.dtypes.items()} == expected
    assert {c: str(t) for c, t in full.dtypes.items()} == expected


def test_duplicate_keys_keep_the_highest_score():
    answers = [entry("eastus", "Standard_A1", s, "1") for s in ("Low", "DataNotFoundOrStale", "Medium")]
    frame = score_rows(answers, 10, {}, {}).rows
    assert frame[["Score", "T3", "T2"]].values.tolist() == [[2, 0, 10]]


def test_size_info_overrides_the_split_and_unknown_scores_give_no_row():
    answers = [
        entry("eastus", "Standard_A1", "High"),
        entry("eastus", "Basic_A0", "VeryHigh"),
        entry("eastus", "Odd", "DataNotFoundOrStale"),
    ]
    frame, unknown, _ = score_rows(answers, 1, {}, {"Standard_A1": ("Standard", "A1 v1")})
    # VeryHigh gives no row (its series keeps its last score); the documented non-scores are -1, not unknown
    assert frame[["InstanceTypeSPS", "InstanceTier", "InstanceType", "Score"]].values.tolist() == [
        ["Odd", "", "Odd", -1],
        ["Standard_A1", "Standard", "A1 v1", 3],
    ]
    assert unknown == {"VeryHigh": 1}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"sku": "Standard_A1", "region": "r"}, "score not text"),
        ("High", "not an object"),
        (["eastus"], "not an object"),
        ({"sku": "", "region": "eastus", "score": "High"}, "sku empty or not text"),
        ({"sku": "Standard_A1", "region": None, "score": "High"}, "region empty or not text"),
        ({"sku": "Standard_A1", "region": "east#us", "score": "High"}, "region empty or not text"),
        ({"sku": "Standard_A1", "region": "eastus", "score": 3}, "score not text"),
        ({"sku": "Standard_A1", "region": "eastus", "score": "High", "availabilityZone": {"z": 1}},
         "availabilityZone not a zone"),
    ],
)  # fmt: skip
def test_an_entry_of_the_wrong_shape_is_rejected_with_its_reason_not_a_crash(bad, reason):
    frame, _, rejections = score_rows([entry("eastus", "Standard_A1", "High"), bad], 1, {}, {})
    assert len(frame) == 1
    assert rejections.served == 2 and dict(rejections.reasons) == {reason: 1}
