"""SPS answers -> dataset rows, and what Azure's HTTP 400 bodies teach (docs/contract.md "Spot Placement Scores")."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import pandas as pd

from ..validation import Rejections, split_valid, sps_entry_problem

SCORE_MAP = {"High": 3, "Medium": 2, "Low": 1}
UNKNOWN_SCORE = -1
# Documented non-scores: they map to -1 like any other value, but only *other* values count as unknown
# (a sign that a newer API version added scores).
NO_SCORE_VALUES = frozenset({"RestrictedSkuNotAvailable", "DataNotFoundOrStale"})
SINGLE_ZONE = "Single"

COLUMNS = (
    "DesiredCount", "RegionCodeSPS", "Region", "InstanceTypeSPS", "InstanceTier",
    "InstanceType", "AvailabilityZone", "Score", "T3", "T2",
)  # fmt: skip
KEY_COLUMNS = ["DesiredCount", "RegionCodeSPS", "InstanceTypeSPS", "AvailabilityZone"]
_INT_COLUMNS = ("DesiredCount", "Score", "T3", "T2")


def score_value(score: Any) -> int:
    """High 3, Medium 2, Low 1, anything else -1."""
    return SCORE_MAP.get(score, UNKNOWN_SCORE) if isinstance(score, str) else UNKNOWN_SCORE


# ---- HTTP 400 bodies ----

_QUOTE = "['\"\u2018\u2019`]"
_INVALID_VALUE = re.compile(
    rf"The value {_QUOTE}(?P<value>[^'\"\u2018\u2019`]*){_QUOTE} provided for the input parameter "
    rf"{_QUOTE}(?P<parameter>[^'\"\u2018\u2019`]*){_QUOTE} is not valid",
    re.IGNORECASE,
)
_SUPPORTED_LOCATIONS = re.compile(
    rf"supported locations are\s*:?\s*{_QUOTE}?(?P<list>[\w ,-]+)", re.IGNORECASE
)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _message_text(text: str) -> str:
    """The readable text of an error body: every string of a JSON body ({"error": {"code", "message"}} or any
    other wrapping), or the body itself with escaped quotes undone."""
    try:
        return "\n".join(_strings(json.loads(text)))
    except ValueError:
        return text.replace('\\"', '"').replace("\\'", "'")


def _invalid_value(text: str, parameter_suffix: str) -> str | None:
    for match in _INVALID_VALUE.finditer(_message_text(text)):
        if match["parameter"].lower().endswith(parameter_suffix.lower()):
            return match["value"]
    return None


def parse_invalid_region(text: str) -> str | None:
    """X of "The value 'X' provided for the input parameter 'desiredLocations' is not valid", else None."""
    return _invalid_value(text, "desiredLocations")


def parse_invalid_size(text: str) -> str | None:
    """X of "... the input parameter 'SpotPlacementRecommenderInput.desiredSizes' is not valid", else None."""
    return _invalid_value(text, "desiredSizes")


_TRY_AGAIN_AFTER = re.compile(rf"try again after\s*{_QUOTE}?(?P<seconds>\d+){_QUOTE}?\s*seconds", re.IGNORECASE)


def parse_try_again_after(text: str) -> float | None:
    """N of a 429 body's "... Please try again after N seconds." (SPS's plain text, or ARM's "after 'N' seconds"
    in a JSON error), or None."""
    match = _TRY_AGAIN_AFTER.search(_message_text(text))
    return float(match["seconds"]) if match else None


def parse_supported_locations(text: str) -> list[str] | None:
    """The list of "... supported locations are 'eastus, eastus2, ...'", in order, deduplicated; or None."""
    match = _SUPPORTED_LOCATIONS.search(_message_text(text))
    if match is None:
        return None
    locations = [loc.strip() for loc in match["list"].split(",")]
    return list(dict.fromkeys(loc for loc in locations if loc)) or None


# ---- Answer rows ----


def _entries(answers: Iterable[Any]) -> Iterable[Any]:
    """placementScores entries; an answer may be a whole answer body or one entry already taken out of one."""
    for answer in answers:
        if isinstance(answer, Mapping) and "placementScores" in answer:
            scores = answer["placementScores"]
            yield from scores if isinstance(scores, list) else [scores]
        else:
            yield answer


def _tier_and_type(size: str, size_info: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
    if size in size_info:
        return size_info[size]
    tier, _, rest = size.partition("_")
    return (tier, rest) if rest else ("", size)


class ScoreRows(NamedTuple):
    rows: pd.DataFrame
    unknown_scores: Counter[str]  # score strings neither a score nor a documented non-score: left out, counted
    rejections: Rejections  # entries of the wrong shape: left out, counted


def score_rows(
    answers: Iterable[Any],
    desired_count: int,
    region_names: Mapping[str, str],
    size_info: Mapping[str, tuple[str, str]],
) -> ScoreRows:
    """Dataset rows (columns COLUMNS) for one run's SPS answers.

    One row per (DesiredCount, RegionCodeSPS, InstanceTypeSPS, AvailabilityZone); when answers repeat a key
    (overlapping requests, retries) the row with the highest Score is kept. Rows are sorted by the key.
    Region is the display name from region_names (price data), or the code when missing there. InstanceTier
    and InstanceType come from size_info, else from splitting the size at its first '_' ('Standard_D2s_v3' ->
    'Standard', 'D2s_v3'; a name without '_' gives tier '' and the whole name as type).

    An entry whose score string is unknown (a newer API value) gives no row, so its series keeps its last stored
    score instead of a -1 that would look like a change; entries of the wrong shape are rejected. Both are counted.
    """
    rows = []
    unknown: Counter[str] = Counter()
    entries, rejections = split_valid(_entries(answers), sps_entry_problem)
    for entry in entries:
        raw_score = entry["score"]
        if raw_score not in SCORE_MAP and raw_score not in NO_SCORE_VALUES:
            unknown[raw_score[:40]] += 1
            continue
        score = score_value(raw_score)
        zone = entry.get("availabilityZone")
        region, size = entry["region"].strip(), entry["sku"].strip()
        tier, instance_type = _tier_and_type(size, size_info)
        rows.append(
            (
                desired_count, region, region_names.get(region, region), size, tier, instance_type,
                SINGLE_ZONE if zone in (None, "") else str(zone).strip(), score,
                desired_count if score == 3 else 0, desired_count if score >= 2 else 0,
            )
        )  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame = frame.astype({c: ("int64" if c in _INT_COLUMNS else "str") for c in COLUMNS})
    frame = (
        frame.sort_values(
            [*KEY_COLUMNS, "Score"], ascending=[True] * len(KEY_COLUMNS) + [False], kind="stable"
        )
        .drop_duplicates(KEY_COLUMNS, keep="first")
        .reset_index(drop=True)
    )
    return ScoreRows(frame, unknown, rejections)
