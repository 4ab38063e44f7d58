"""Every bad answer is a failed source or quarantined records, never a crash and never a stored wrong value
(the README's bad-input table). The raw assets run against the Azure emulator over HTTP, one knob per case; what
is stored afterwards is checked value by value."""

from __future__ import annotations

import itertools
import math
from datetime import timedelta

import pandas as pd
import pytest

from spotlake_assets.core import names
from spotlake_assets.core.timekeys import data_time
from spotlake_assets.core.validation import MAX_PRICE_PER_HOUR
from spotlake_assets.defs import build_resources
from spotlake_assets.local.run import run_partitions

from .stack import check_evaluations, graph, history_points, load_frame, metadata, run_assets, start, use_stack

SOURCES = (names.PRICE_RAW, names.EVICTION_RAW, names.SPS_RAW)
# Each test collects its own partition, 70 minutes after the one before: one stack for all of them, and the SPS
# quota (10 calls a pair in 62 minutes) of one test never limits the next.
PARTITIONS = (f"{t:%Y-%m-%d-%H:%M}" for t in (data_time("2026-11-20-00:00") + timedelta(minutes=70) * i
                                              for i in itertools.count()))  # fmt: skip


@pytest.fixture(scope="module")
def stack():
    with start(seed=5) as s:
        yield s


@pytest.fixture
def partition():
    return next(PARTITIONS)


def collect(stack, monkeypatch, partition, **knobs):
    """The raw assets of `partition` at its data time with the emulator set as `knobs` say (the rest default)."""
    stack.emulator.configure(**{**DEFAULT_KNOBS, **knobs})
    sources = graph(*SOURCES)
    # the day's pool is built from this partition's own prices when none is stored (a fresh deployment)
    return run_assets(stack, monkeypatch, sources, partition, data_time(partition), max_tries=4)


DEFAULT_KNOBS = dict(
    record_faults={}, rate_429=0.0, rate_500=0.0, rate_cut=0.0, rate_malformed=0.0, retry_after_header=None,
    retry_after_seconds=0, overrides={},
)  # fmt: skip


def stored(stack, asset, partition):
    return load_frame(build_resources(stack.settings)["store"], asset, partition)


def outcome(result, asset) -> tuple[bool, str]:
    """(collected check passed, its error or '')."""
    evaluation = check_evaluations(result)[(asset, "collected")]
    error = evaluation.metadata.get("error")
    return evaluation.passed, "" if error is None else error.value


def assert_nothing_wrong_is_stored(stack, partition):
    """Every stored raw value is one the dataset can hold: keys non-empty text, prices finite and in range."""
    price = stored(stack, names.PRICE_RAW, partition)
    if price is not None:
        for col in ("InstanceType", "Region", "armRegionName"):
            assert price[col].astype(str).str.strip().ne("").all(), col
        for col in ("OndemandPrice", "SpotPrice"):
            values = price[col].dropna()
            assert values.between(0, MAX_PRICE_PER_HOUR).all() and values.map(math.isfinite).all(), col
    sps = stored(stack, names.SPS_RAW, partition)
    if sps is not None:
        assert set(sps["Score"]) <= {-1, 1, 2, 3}
        assert sps["RegionCodeSPS"].str.strip().ne("").all()


@pytest.mark.parametrize(
    ("knobs", "fault"),
    [
        (dict(rate_429=0.3, retry_after_header="nan"), "429"),  # a wait that is not a number
        (dict(rate_429=0.3, retry_after_header="-5"), "429"),  # a negative wait
        (dict(rate_cut=0.2), "cut"),  # connections cut mid-body, then retried
        (dict(rate_malformed=0.2), "malformed"),  # truncated JSON bodies, then retried
    ],
    ids=["retry-after nan", "retry-after negative", "connection cut", "truncated body"],
)
def test_transient_bad_answers_are_retried_and_change_nothing(stack, monkeypatch, partition, knobs, fault):
    assert collect(stack, monkeypatch, partition).success
    clean = {a: stored(stack, a, partition) for a in (names.PRICE_RAW, names.EVICTION_RAW)}
    stack.emulator.reset_stats()
    result = collect(stack, monkeypatch, partition, **knobs)
    assert stack.emulator.stats()["faults"][fault] > 0
    assert result.success
    for asset, frame in clean.items():
        assert outcome(result, asset) == (True, "")
        pd.testing.assert_frame_equal(stored(stack, asset, partition), frame)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("retailPrice", "abc", "retailPrice not a price"),
        ("retailPrice", -0.5, "retailPrice not a price"),
        ("retailPrice", float("inf"), "retailPrice not a price"),
        ("retailPrice", 1e200, "retailPrice not a price"),
        ("location", "", "location empty or not text"),
        ("armSkuName", 12, "armSkuName empty or not text"),
        ("armRegionName", "east#us", "armRegionName empty or not text"),
    ],
    ids=["non-numeric", "negative", "infinity", "beyond DynamoDB", "empty location", "wrong type", "separator"],
)
def test_a_few_bad_price_items_are_quarantined(stack, monkeypatch, partition, field, value, reason):
    """One item in 500 is bad: it is left out and counted; the others make the table."""
    result = collect(stack, monkeypatch, partition, record_faults={"price": {"every": 500, "set": {field: value}}})
    assert result.success and outcome(result, names.PRICE_RAW)[0]
    meta = metadata(result, names.PRICE_RAW)
    assert meta["items_rejected"] > 0 and reason in meta["rejected_because"]
    assert_nothing_wrong_is_stored(stack, partition)


@pytest.mark.parametrize(
    ("knobs", "asset", "says"),
    [
        (dict(record_faults={"price": {"every": 10, "set": {"retailPrice": "abc"}}}), names.PRICE_RAW,
         "retailPrice not a price"),
        (dict(record_faults={"price": {"every": 1, "drop": True}}), names.PRICE_RAW, "/api/retail/prices"),
        (dict(rate_cut=1.0), names.PRICE_RAW, "no response"),
        (dict(record_faults={"eviction": {"every": 1, "set": {"evictionRate": "very low"}}}), names.EVICTION_RAW,
         "evictionRate unknown"),
        (dict(record_faults={"eviction": {"every": 3, "replace": "oops"}}), names.EVICTION_RAW, "has no id"),
        (dict(record_faults={"eviction": {"every": 1, "drop": True}}), names.EVICTION_RAW, "Microsoft.ResourceGraph"),
        (dict(record_faults={"sps": {"every": 7, "replace": "oops"}}), names.SPS_RAW, "not an object"),
        (dict(record_faults={"sps": {"every": 2, "set": {"region": ""}}}), names.SPS_RAW, "region empty"),
    ],
    ids=["many bad prices", "empty price answer", "every connection cut", "unknown eviction buckets",
         "eviction rows not objects", "empty eviction answer", "SPS entries not objects", "SPS empty regions"],
)  # fmt: skip
def test_a_broken_answer_is_a_failed_source_with_its_reason(stack, monkeypatch, partition, knobs, asset, says):
    result = collect(stack, monkeypatch, partition, **knobs)
    assert result.success  # a failed source never fails the run: the merge publishes a partial snapshot
    passed, error = outcome(result, asset)
    assert not passed and says in error
    assert stored(stack, asset, partition) is None  # its failure marker, not a table
    assert_nothing_wrong_is_stored(stack, partition)


def test_a_refused_secret_fails_the_authenticated_sources_and_names_no_secret(stack, monkeypatch, partition):
    creds = stack.emulator.credentials
    monkeypatch.setenv("AZURE_TENANT_ID", creds["tenant_id"])
    monkeypatch.setenv("AZURE_CLIENT_ID", creds["client_id"])
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "expired-or-wrong-secret")
    monkeypatch.setenv("AZURE_SUBSCRIPTIONS", ",".join(creds["subscriptions"]))
    result = collect(stack, monkeypatch, partition)
    assert result.success and outcome(result, names.PRICE_RAW)[0]  # prices need no credentials
    for asset in (names.EVICTION_RAW, names.SPS_RAW):
        passed, error = outcome(result, asset)
        assert not passed and "AADSTS7000215" in error
        assert "expired-or-wrong-secret" not in error and creds["client_secret"] not in error


def test_an_unknown_score_keeps_the_series_last_score_and_fails_a_check(monkeypatch):
    """23:40 and 23:50 ask the same desired count (1): a score string nobody knows in the second partition keeps the
    series' stored score (no point written for it), instead of storing -1 as a change."""
    first, second = "2026-11-26-23:40", "2026-11-26-23:50"
    with start(seed=5, drift_rate=0) as stack:
        resources = use_stack(stack, monkeypatch)
        assert run_partitions(stack, [first]).success
        before = len(history_points(stack))
        sps = load_frame(resources["store"], names.SPS_RAW, first)
        row = sps[sps["Score"] > 0].sort_values(["RegionCodeSPS", "InstanceTypeSPS", "AvailabilityZone"]).iloc[0]
        zone = "single" if row.AvailabilityZone == "Single" else row.AvailabilityZone
        stack.emulator.configure(
            overrides={"score": {f"{row.RegionCodeSPS}|{row.InstanceTypeSPS}|{zone}|1": "VeryHighIndeed"}}
        )
        report = run_partitions(stack, [second])
        assert report.success
        [summary] = report.partitions
        assert summary.failed_checks == ["azure_sps_raw / sps_scores_known"]
        assert summary.changes_written == 0 and len(history_points(stack)) == before
