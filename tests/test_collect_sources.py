"""Price and IF collection end to end: Dagster materializations against the Azure emulator over HTTP and
moto's server over HTTP, through the real resources and IO manager."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import DagsterInstance

from resources.clock import Clock
from resources.s3 import S3Store, WriteRefusedError
from spotlake_assets.core.layout import frame_key
from spotlake_assets.core.timekeys import data_time
from spotlake_assets.defs import build_resources
from spotlake_assets.local.stack import LocalStack

from .stack import (
    bucket_state,
    check_evaluations,
    failure_messages,
    graph,
    load_frame,
    materialize_only,
    metadata,
    run_assets,
    s3_client,
    start,
    use_stack,
)

PARTITION = "2026-11-27-10:10"
T = data_time(PARTITION)
SOURCES = graph("azure_price_raw", "azure_eviction_raw")


def collect(stack: LocalStack, monkeypatch, *, partition: str = PARTITION, max_tries: int = 8, now=None):
    """Materialize price and IF for a partition with the resources the environment would build."""
    return run_assets(
        stack,
        monkeypatch,
        SOURCES,
        partition,
        now or data_time(partition),
        max_tries=max_tries,
        set_emulator_time=False,
    )


def stored(stack: LocalStack, asset: str, partition: str = PARTITION) -> pd.DataFrame:
    return load_frame(build_resources(stack.settings)["store"], asset, partition)


def start_at_t(env_name: str = "local", **knobs) -> LocalStack:
    stack = start(env_name, **knobs)
    stack.emulator.set_time(T)
    return stack


@pytest.fixture
def stack():
    with start_at_t() as s:
        yield s


def test_price_and_if_land_in_the_write_bucket_in_legacy_layout(stack, monkeypatch):
    result = collect(stack, monkeypatch)
    assert result.success
    keys = bucket_state(stack, stack.settings.write_bucket)
    assert "rawdata/azure/spot_price/2026/11/27/10-20_spot_price.parquet" in keys
    assert "rawdata/azure/spot_if/2026/11/27/10-20_spot_if.parquet" in keys

    price = stored(stack, "azure_price_raw")
    assert list(price.columns) == [
        "InstanceTier",
        "InstanceType",
        "Region",
        "armRegionName",
        "OndemandPrice",
        "SpotPrice",
        "Savings",
    ]
    assert metadata(result, "azure_price_raw")["rows"] == len(price) > 0
    regions = set(price["armRegionName"])
    assert "germanywestcentral" in regions
    assert not any(r.startswith(("usgov", "usdod", "china")) for r in regions)
    assert "NC24ads_A100_v4" in set(price["InstanceType"])  # Azure's spelling kept
    assert (price["SpotPrice"] >= 0).all()
    assert not price.duplicated(["InstanceTier", "InstanceType", "Region"]).any()

    ifs = stored(stack, "azure_eviction_raw")
    assert list(ifs.columns) == ["InstanceTier", "InstanceType", "Region", "IF"]
    assert set(ifs["IF"]) <= {1.0, 1.5, 2.0, 2.5, 3.0}
    assert metadata(result, "azure_eviction_raw")["rows"] == len(ifs) > 0


def test_rerun_writes_identical_bytes(stack, monkeypatch):
    assert collect(stack, monkeypatch).success
    before = bucket_state(stack, stack.settings.write_bucket)
    assert collect(stack, monkeypatch).success
    assert bucket_state(stack, stack.settings.write_bucket) == before


def test_faults_give_the_same_tables_as_a_fault_free_run(stack, monkeypatch):
    assert collect(stack, monkeypatch).success
    clean = {a: stored(stack, a) for a in ("azure_price_raw", "azure_eviction_raw")}
    with start_at_t(rate_429=0.2, rate_500=0.05, rate_timeout=0.02) as faulty:
        result = collect(faulty, monkeypatch, max_tries=12)
        assert result.success
        for asset, frame in clean.items():
            pd.testing.assert_frame_equal(stored(faulty, asset), frame)
        retries = metadata(result, "azure_price_raw")["retries"] + metadata(result, "azure_eviction_raw")["retries"]
        injected = faulty.emulator.stats()["faults"]
        assert retries > 0 and sum(injected.values()) > 0


def test_always_failing_azure_gives_a_clear_error_and_writes_nothing(monkeypatch):
    """After the retry budget the source is reported failed (check and metadata name endpoint and status) and
    no snapshot is written; the run goes on so the merge can publish a partial snapshot."""
    with start_at_t(rate_500=1.0) as broken:
        result = collect(broken, monkeypatch, max_tries=3)
        checks = check_evaluations(result)
        errors = {}
        for asset in ("azure_price_raw", "azure_eviction_raw"):
            evaluation = checks[(asset, "collected")]
            assert not evaluation.passed
            errors[asset] = evaluation.metadata["error"].value
            assert metadata(result, asset)["collection_failed"] == errors[asset]
        assert "/api/retail/prices" in errors["azure_price_raw"]
        assert "Microsoft.ResourceGraph" in errors["azure_eviction_raw"]
        assert all("HTTP 500 after 3 tries" in e for e in errors.values())
        # no snapshot, only the markers that tell a later backfill the source failed live
        assert sorted(bucket_state(broken, broken.settings.write_bucket)) == [
            "rawdata/azure/spot_if/2026/11/27/10-20_spot_if.failed.json",
            "rawdata/azure/spot_price/2026/11/27/10-20_spot_price.failed.json",
        ]


def test_a_past_partition_with_nothing_stored_is_refused_before_any_request_or_write(stack, monkeypatch):
    """Two hours late, with nothing stored: no request to Azure, each source's step fails saying the partition can
    no longer be collected (the run is not green), and nothing is stored, not even a failure marker."""
    stack.emulator.reset_stats()
    result = collect(stack, monkeypatch, now=T.replace(hour=12))
    assert not result.success
    failures = failure_messages(result)
    assert len(failures) == 2
    for failure in failures:
        assert f"partition {PARTITION} can no longer be collected" in failure
        assert "Azure serves only the present" in failure and "spotlake import-legacy" in failure
    assert bucket_state(stack, stack.settings.write_bucket) == {}
    assert stack.emulator.stats()["requests"] == {}


def test_a_past_range_with_nothing_stored_is_refused_but_one_with_something_stored_goes_on(stack, monkeypatch):
    """A backfill range none of whose partitions has anything stored is refused as a whole; once one of them was
    collected, the range imports it and its `collected` check names the ones never collected."""
    later = "2026-11-27-10:20"
    ranged = {"dagster/asset_partition_range_start": PARTITION, "dagster/asset_partition_range_end": later}
    resources = use_stack(stack, monkeypatch)
    resources["clock"] = Clock(frozen_at=T.replace(hour=12).isoformat())
    with DagsterInstance.ephemeral() as instance:
        refused = materialize_only(SOURCES, resources, instance, tags=ranged, raise_on_error=False)
    assert not refused.success
    assert all(f"partitions {PARTITION} to {later} can no longer be collected" in f for f in failure_messages(refused))
    assert bucket_state(stack, stack.settings.write_bucket) == {}

    stack.emulator.set_time(data_time(later))
    assert collect(stack, monkeypatch, partition=later).success  # collected live in its window
    resources["clock"] = Clock(frozen_at=T.replace(hour=12).isoformat())
    with DagsterInstance.ephemeral() as instance:
        imported = materialize_only(SOURCES, resources, instance, tags=ranged, raise_on_error=False)
    assert imported.success
    evaluation = check_evaluations(imported)[("azure_price_raw", "collected")]
    assert not evaluation.passed and evaluation.metadata["never_collected"].value == PARTITION


def test_test_environment_writes_only_the_test_bucket(monkeypatch):
    """In `test` the production bucket (the read bucket) is byte-for-byte untouched by a materialization, and a
    store aimed at it is refused before any request is sent."""
    with start_at_t(env_name="test") as stack:
        prod, test = stack.settings.read_bucket, stack.settings.write_bucket
        assert (prod, test) == ("spotlake", "spotlake-test")
        s3 = s3_client(stack)
        # production holds history, including an object at the very key this run writes
        s3.put_object(Bucket=prod, Key=frame_key("azure_price_raw", PARTITION), Body=b"prod bytes")
        s3.put_object(Bucket=prod, Key="sps-collector/azure/saved_variable/invalid_regions.json", Body=b"[]")
        before = bucket_state(stack, prod)

        assert collect(stack, monkeypatch).success
        assert bucket_state(stack, prod) == before
        assert any(k.startswith("rawdata/azure/spot_price/") for k in bucket_state(stack, test))

        settings = stack.settings
        misaimed = S3Store(
            env="test",
            write_bucket=prod,
            read_bucket=prod,
            endpoint_url=settings.aws_endpoint_url,
            region_name="us-west-2",
        )
        with pytest.raises(WriteRefusedError, match="'spotlake'.*test"):
            misaimed.put("latest_data/latest_azure.json", b"{}")
        assert bucket_state(stack, prod) == before
