"""Price and IF collection end to end: Dagster materializations against the Azure emulator over HTTP and
moto's server over HTTP, through the real resources and IO manager."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from resources.clock import Clock
from resources.io_manager import read_frame
from resources.s3 import WriteRefusedError
from spotlake_assets.defs import azure_resource, build_resources
from spotlake_assets.local.aws import LOCAL_AWS_CREDENTIALS
from spotlake_assets.local.stack import LocalStack, start_local_stack
from spotlake_assets.partitions import data_time
from spotlake_assets.sources.eviction import azure_eviction_raw
from spotlake_assets.sources.price import azure_price_raw
from spotlake_assets.storage_keys import raw_key_stem

PARTITION = "2026-11-27-10:10"
T = data_time(PARTITION)
FAST_FAULTS = dict(retry_after_seconds=0, timeout_seconds=1.5)


def start(env_name: str = "local", **knobs) -> LocalStack:
    stack = start_local_stack(env_name=env_name, seed=11, scale="small", **{**FAST_FAULTS, **knobs})
    stack.emulator.set_time(T)
    return stack


def collect(stack: LocalStack, monkeypatch, *, partition: str = PARTITION, max_tries: int = 8, now=None):
    """Materialize price and IF for a partition with the resources the environment would build."""
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    resources = build_resources(stack.settings)
    resources["azure"] = azure_resource(
        stack.settings, max_tries=max_tries, timeout_seconds=0.5, backoff_base_seconds=0.01, backoff_max_seconds=0.05
    )
    resources["clock"] = Clock(frozen_at=(now or data_time(partition)).isoformat())
    with DagsterInstance.ephemeral() as instance:
        return materialize(
            [azure_price_raw, azure_eviction_raw], partition_key=partition, resources=resources, instance=instance,
            raise_on_error=False,
        )


def stored(stack: LocalStack, asset: str, partition: str = PARTITION) -> pd.DataFrame:
    return read_frame(build_resources(stack.settings)["store"], raw_key_stem(asset, partition))


def metadata(result, asset: str) -> dict:
    [mat] = [m for m in result.asset_materializations_for_node(asset)]
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def failure_messages(result) -> list[str]:
    """Each failed step's error with its causes (Dagster wraps the asset's exception)."""
    out = []
    for event in result.all_events:
        if event.is_step_failure:
            error, text = event.event_specific_data.error, []
            while error is not None:
                text.append(error.message)
                error = error.cause
            out.append(" | ".join(text))
    return out


def s3_client(stack: LocalStack):
    return boto3.client("s3", endpoint_url=stack.aws.endpoint_url, region_name="us-west-2", **LOCAL_AWS_CREDENTIALS)


def bucket_state(stack: LocalStack, bucket: str) -> dict[str, str]:
    pages = s3_client(stack).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


@pytest.fixture
def stack():
    with start() as s:
        yield s


def test_price_and_if_land_in_the_write_bucket_in_legacy_layout(stack, monkeypatch):
    result = collect(stack, monkeypatch)
    assert result.success
    keys = bucket_state(stack, stack.settings.write_bucket)
    assert "rawdata/azure/spot_price/2026/11/27/10-20_spot_price.parquet" in keys
    assert "rawdata/azure/spot_if/2026/11/27/10-20_spot_if.parquet" in keys

    price = stored(stack, "azure_price_raw")
    assert list(price.columns) == ["InstanceTier", "InstanceType", "Region", "armRegionName", "OndemandPrice",
                                   "SpotPrice", "Savings"]
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
    with start(rate_429=0.2, rate_500=0.05, rate_timeout=0.02) as faulty:
        result = collect(faulty, monkeypatch, max_tries=12)
        assert result.success
        for asset, frame in clean.items():
            pd.testing.assert_frame_equal(stored(faulty, asset), frame)
        retries = metadata(result, "azure_price_raw")["retries"] + metadata(result, "azure_eviction_raw")["retries"]
        injected = faulty.emulator.stats()["faults"]
        assert retries > 0 and sum(injected.values()) > 0


def test_always_failing_azure_gives_a_clear_error_and_writes_nothing(monkeypatch):
    with start(rate_500=1.0) as broken:
        result = collect(broken, monkeypatch, max_tries=3)
        assert not result.success
        messages = failure_messages(result)
        assert len(messages) == 2
        assert any("/api/retail/prices" in m and "HTTP 500 after 3 tries" in m for m in messages)
        assert any("Microsoft.ResourceGraph" in m and "HTTP 500 after 3 tries" in m for m in messages)
        assert bucket_state(broken, broken.settings.write_bucket) == {}


def test_a_past_partition_is_not_collected_live(stack, monkeypatch):
    result = collect(stack, monkeypatch, now=T.replace(hour=12))
    assert not result.success
    messages = failure_messages(result)
    assert len(messages) == 2 and all("Azure serves only the present" in m for m in messages)


def test_test_environment_writes_only_the_test_bucket(monkeypatch):
    """In `test` the production bucket (the read bucket) is byte-for-byte untouched by a materialization,
    and a write aimed at it is refused before any request is sent."""
    with start(env_name="test") as stack:
        prod, test = stack.settings.read_bucket, stack.settings.write_bucket
        assert (prod, test) == ("spotlake", "spotlake-test")
        s3 = s3_client(stack)
        # production holds history, including an object at the very key this run writes
        s3.put_object(Bucket=prod, Key=raw_key_stem("azure_price_raw", PARTITION) + ".parquet", Body=b"prod bytes")
        s3.put_object(Bucket=prod, Key="sps-collector/azure/saved_variable/invalid_regions.json", Body=b"[]")
        before = bucket_state(stack, prod)

        assert collect(stack, monkeypatch).success
        assert bucket_state(stack, prod) == before
        assert any(k.startswith("rawdata/azure/spot_price/") for k in bucket_state(stack, test))

        store = build_resources(stack.settings)["store"]
        sent: list[str] = []
        store.client.meta.events.register("before-send.s3.*", lambda request, **_: sent.append(request.url))
        with pytest.raises(WriteRefusedError, match="spotlake"):
            store.put_to(prod, "latest_data/latest_azure.json", b"{}")
        assert sent == []
        assert bucket_state(stack, prod) == before
