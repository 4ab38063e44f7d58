"""SplitBucketParquetIOManager driven by real Dagster materializations against a moto server over HTTP."""

import gzip
import pickle

import dagster as dg
import pandas as pd
import pytest

from resources.io_manager import (
    PartitionStore,
    Saved,
    SplitBucketParquetIOManager,
    StoredPartitions,
    frame_from_parquet,
    frame_to_parquet,
)
from resources.s3 import S3Store
from spotlake_assets.core.layout import failure_marker_key, frame_key, key_stem
from spotlake_assets.partitions import Partitions

PARTS = Partitions.starting_at("2026-11-01-00:00").ten_minutes
P0, P1, P2 = "2026-11-01-00:00", "2026-11-01-00:10", "2026-11-01-00:20"
# the raw key of P1 (data time 00:20, the end of its window)
RAW_P1 = "rawdata/azure/spot_price/2026/11/01/00-20_spot_price"


def price_frame(partition_key: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "InstanceType": ["Standard_D2s_v3", "Standard_E4s_v5"],
            "SpotPrice": [0.05, 0.21],
            "partition": partition_key,
        }
    )


@dg.asset(partitions_def=PARTS)
def azure_price_raw(context: dg.AssetExecutionContext):
    return [(context.partition_key, price_frame(context.partition_key))]


@dg.asset(partitions_def=PARTS)
def price_copy(context: dg.AssetExecutionContext, azure_price_raw: StoredPartitions):
    return [(key, azure_price_raw[key]) for key in context.partition_keys]


@dg.asset(
    partitions_def=PARTS,
    ins={"azure_price_raw": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1))},
)
def price_window(context: dg.AssetExecutionContext, azure_price_raw: StoredPartitions):
    frames = [azure_price_raw[key] for key in sorted(azure_price_raw)]
    return [(context.partition_key, pd.concat(frames, ignore_index=True))]


@dg.asset(partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run())
def price_range(context: dg.AssetExecutionContext):
    # a generator, written as it comes (wrapped in Output: a bare generator would be taken for the asset's events)
    return dg.Output((key, price_frame(key)) for key in context.partition_keys)


@dg.asset(partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run())
def price_range_incomplete(context: dg.AssetExecutionContext):
    return [(context.partition_keys[0], price_frame("only-one"))]


@dg.asset(partitions_def=PARTS)
def returns_another_partition(context: dg.AssetExecutionContext):
    return [(P2, price_frame(P2))]


@dg.asset(partitions_def=PARTS)
def source_failed(context: dg.AssetExecutionContext):
    return [(context.partition_key, None)]


@dg.asset(partitions_def=PARTS)
def reads_failed(context: dg.AssetExecutionContext, source_failed: StoredPartitions):
    assert source_failed[context.partition_key] is None
    return [(context.partition_key, pd.DataFrame({"seen": ["none"]}))]


# what was already stored each time price_streamed computed a partition
STORED_WHEN_COMPUTED: dict[str, list[str]] = {}


@dg.asset(partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run())
def price_streamed(context: dg.AssetExecutionContext, store: S3Store):
    def frames():
        for key in context.partition_keys:
            STORED_WHEN_COMPUTED[key] = store.list_keys("dagster/azure/price_streamed/")
            yield key, price_frame(key)

    return dg.Output(frames())


@dg.multi_asset(
    outs={"pair_left": dg.AssetOut(), "pair_right": dg.AssetOut()},
    partitions_def=PARTS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=False,
)
def price_pair(context: dg.AssetExecutionContext, store: S3Store):
    # both outputs of a partition are computed together: each is saved as soon as computed, receipts returned
    partitions = PartitionStore(store)
    saved: dict[str, list[tuple[str, Saved]]] = {"pair_left": [], "pair_right": []}
    for key in context.partition_keys:
        for name, receipts in saved.items():
            receipts.append((key, partitions.save(name, key, price_frame(f"{name} {key}"), context.run_id)))
    for name, receipts in saved.items():
        yield dg.Output(receipts, output_name=name)


@dg.asset(partitions_def=PARTS)
def returns_anothers_receipt(context: dg.AssetExecutionContext, store: S3Store):
    key = context.partition_key
    return [(key, PartitionStore(store).save("azure_price_raw", key, price_frame(key), context.run_id))]


ASSETS = [
    azure_price_raw, price_copy, price_window, price_range, price_range_incomplete, returns_another_partition,
    source_failed, reads_failed, price_streamed, price_pair, returns_anothers_receipt,
]  # fmt: skip
# the run tags a single-run backfill over P0..P2 launches with
RANGE_TAGS = {"dagster/asset_partition_range_start": P0, "dagster/asset_partition_range_end": P2}


def run(store, selection, partition_key: str | None = P1, tags=None) -> dg.ExecuteInProcessResult:
    resources = {"io_manager": SplitBucketParquetIOManager(store=store), "store": store}
    return dg.materialize(ASSETS, selection=selection, partition_key=partition_key, resources=resources, tags=tags)


def materialization_metadata(result: dg.ExecuteInProcessResult, asset_name: str) -> list[dict]:
    """Metadata of each materialization (one per partition) of the asset in the run."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset_name]
    return [{k: v.value for k, v in e.materialization.metadata.items()} for e in events]


def test_key_stems():
    assert key_stem("azure_price_raw", P1) == RAW_P1
    # data time 00:20 is the third slot of the day
    assert key_stem("azure_sps_raw", P1) == "rawdata/azure/sps/2026/11/01/00-20_sps_10"
    assert key_stem("azure_spot_snapshot", P1) == "dagster/azure/azure_spot_snapshot/2026-11-01-00-10"
    assert key_stem("azure_sps_request_pool", "2026-11-01") == "dagster/azure/azure_sps_request_pool/2026-11-01"
    with pytest.raises(ValueError, match="azure_price_raw"):
        key_stem("azure_price_raw", None)


def test_parquet_bytes_are_deterministic_and_drop_the_index():
    frame = price_frame(P1)
    reindexed = frame.set_axis([7, 9])
    assert frame_to_parquet(frame) == frame_to_parquet(frame.copy()) == frame_to_parquet(reindexed)
    pd.testing.assert_frame_equal(frame_from_parquet(frame_to_parquet(reindexed)), frame)


def test_write_then_downstream_reads_several_partitions(make_store, buckets):
    store = make_store()
    first = run(store, [azure_price_raw], P0)
    second = run(store, [azure_price_raw], P1)
    assert first.success and second.success

    assert materialization_metadata(second, "azure_price_raw") == [
        {
            "s3_bucket": buckets.write,
            "s3_key": RAW_P1 + ".parquet",
            "rows": 2,
            "bytes": len(store.get(RAW_P1 + ".parquet")),
        }
    ]
    assert run(store, [price_window], P1).success
    stored = frame_from_parquet(store.get("dagster/azure/price_window/2026-11-01-00-10.parquet"))
    assert stored["partition"].tolist() == [P0, P0, P1, P1]
    # the first partition has no previous one: a window of one, the same mapping shape
    assert run(store, [price_window], P0).success
    stored = frame_from_parquet(store.get("dagster/azure/price_window/2026-11-01-00-00.parquet"))
    assert stored["partition"].tolist() == [P0, P0]
    assert store.list_keys("", bucket=buckets.read) == []


def test_reads_fall_back_to_the_read_bucket(make_store, buckets, s3_admin):
    s3_admin.put_object(Bucket=buckets.read, Key=RAW_P1 + ".parquet", Body=frame_to_parquet(price_frame("from-prod")))
    store = make_store()

    result = run(store, [price_copy])
    assert result.success
    copied = frame_from_parquet(store.get("dagster/azure/price_copy/2026-11-01-00-10.parquet"))
    assert copied["partition"].tolist() == ["from-prod", "from-prod"]


def test_a_missing_partition_is_none_and_names_every_location_tried(make_store, buckets):
    store = make_store()
    assert StoredPartitions(PartitionStore(store), "azure_price_raw", [P2])[P2] is None
    found = PartitionStore(store).find("azure_price_raw", P2)
    stem = "rawdata/azure/spot_price/2026/11/01/00-30_spot_price"
    assert found.status == "missing"
    assert found.tried == (f"s3://{buckets.write}/{stem}.parquet", f"s3://{buckets.read}/{stem}.parquet")


def test_legacy_pickles_are_never_opened(make_store, buckets, s3_admin):
    """A legacy .pkl.gz at the very key stem is not read by a run, in either bucket: runs read only Parquet
    (pickles are converted offline by `spotlake import-legacy`)."""

    class Explodes:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    body = gzip.compress(pickle.dumps(Explodes()))
    for bucket in buckets:
        s3_admin.put_object(Bucket=bucket, Key=RAW_P1 + ".pkl.gz", Body=body)
    assert PartitionStore(make_store()).find("azure_price_raw", P1).status == "missing"


def test_rematerializing_rewrites_identical_bytes(make_store):
    store = make_store()
    run(store, [azure_price_raw])
    etag = store.head(RAW_P1 + ".parquet")["ETag"]
    run(store, [azure_price_raw])
    assert store.head(RAW_P1 + ".parquet")["ETag"] == etag


def test_single_run_over_a_range_writes_every_partition(make_store):
    store = make_store()
    result = run(store, [price_range], partition_key=None, tags=RANGE_TAGS)

    assert result.success
    for key, stored in zip((P0, P1, P2), ("00-00", "00-10", "00-20"), strict=True):
        frame = frame_from_parquet(store.get(f"dagster/azure/price_range/2026-11-01-{stored}.parquet"))
        assert frame["partition"].tolist() == [key, key]
    # Dagster gives every partition of the run the same IO-manager metadata: the run's totals and keys
    metadata = materialization_metadata(result, "price_range")
    assert len(metadata) == 3 and all(m["rows"] == 6 and len(m["s3_key"]) == 3 for m in metadata)


def test_a_run_must_return_every_partition_and_only_those(make_store):
    store = make_store()
    with pytest.raises(dg.Failure, match="returned nothing for partitions"):
        run(store, [price_range_incomplete], partition_key=None, tags=RANGE_TAGS)
    with pytest.raises(dg.Failure, match="that this run does not materialize"):
        run(store, [returns_another_partition])
    assert store.list_keys("dagster/azure/returns_another_partition") == []


def test_a_failed_source_stores_a_marker_that_loads_as_none(make_store):
    store = make_store()
    assert run(store, [source_failed]).success
    assert store.list_keys("dagster/azure/source_failed/") == [failure_marker_key("source_failed", P1)]
    assert PartitionStore(store).find("source_failed", P1).status == "failed"
    assert run(store, [reads_failed]).success


def test_a_generator_output_is_written_one_partition_at_a_time(make_store):
    store = make_store()
    STORED_WHEN_COMPUTED.clear()
    assert run(store, [price_streamed], partition_key=None, tags=RANGE_TAGS).success
    keys = [frame_key("price_streamed", p) for p in (P0, P1, P2)]
    # each partition was computed after every earlier one was stored, and before any later one
    assert STORED_WHEN_COMPUTED == {P0: [], P1: keys[:1], P2: keys[:2]}


def test_outputs_saved_as_they_are_computed_are_recorded_not_written_again(make_store, buckets):
    store = make_store()
    result = run(store, [price_pair], partition_key=None, tags=RANGE_TAGS)
    assert result.success
    for name in ("pair_left", "pair_right"):
        for key in (P0, P1, P2):
            frame = frame_from_parquet(store.get(frame_key(name, key)))
            assert frame["partition"].tolist() == [f"{name} {key}"] * 2
        metadata = materialization_metadata(result, name)
        sizes = sum(len(store.get(frame_key(name, key))) for key in (P0, P1, P2))
        assert len(metadata) == 3
        assert all(m["rows"] == 6 and m["bytes"] == sizes and len(m["s3_key"]) == 3 for m in metadata)


def test_a_receipt_must_be_of_the_asset_and_partition_it_is_returned_for(make_store):
    with pytest.raises(dg.Failure, match="what was saved for azure_price_raw"):
        run(make_store(), [returns_anothers_receipt])
