"""S3Store against a real moto server over HTTP."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from resources.s3 import PreconditionFailed, S3StoreError, Version, WriteRefusedError

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def public_read_granted(s3_admin, bucket: str, key: str) -> bool:
    grants = s3_admin.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    return any(g["Grantee"].get("URI") == ALL_USERS and g["Permission"] == "READ" for g in grants)


def test_round_trip_writes_only_the_write_bucket(make_store, buckets, s3_admin):
    store = make_store()
    etag = store.put("state/a.json", b'{"a": 1}', content_type="application/json")

    assert store.get("state/a.json") == b'{"a": 1}'
    assert store.get_with_source("state/a.json") == (b'{"a": 1}', buckets.write)
    assert store.head("state/a.json")["ContentType"] == "application/json"
    assert store.head("state/a.json")["ETag"] == etag
    assert "Contents" not in s3_admin.list_objects_v2(Bucket=buckets.read)


def test_reads_fall_back_to_the_read_bucket_and_prefer_the_write_bucket(make_store, buckets, s3_admin):
    store = make_store()
    s3_admin.put_object(Bucket=buckets.read, Key="lists/only-read", Body=b"prod")
    s3_admin.put_object(Bucket=buckets.read, Key="lists/both", Body=b"prod")
    store.put("lists/both", b"test")

    assert store.get_with_source("lists/only-read") == (b"prod", buckets.read)
    assert store.get_with_source("lists/both") == (b"test", buckets.write)
    assert store.head("lists/only-read") is None  # head defaults to the write bucket
    assert store.head("lists/only-read", bucket=buckets.read)["ContentLength"] == 4


def test_missing_key_is_none_and_other_errors_name_operation_bucket_key_status(make_store, buckets):
    assert make_store().get("no/such/key") is None
    assert make_store().get_with_source("no/such/key") is None

    with pytest.raises(S3StoreError) as err:
        make_store(write_bucket="spotlake-missing-bucket").get("some/key")
    message = str(err.value)
    for part in ("GetObject", "s3://spotlake-missing-bucket/some/key", "404", "NoSuchBucket"):
        assert part in message


def test_list_keys_pages_through_a_prefix(make_store, buckets, s3_admin):
    store = make_store()
    for i in range(5):
        store.put(f"raw/2026/{i:02d}", b"x")
    store.put("other/1", b"x")
    s3_admin.put_object(Bucket=buckets.read, Key="raw/2026/read-only", Body=b"x")
    listings: list[str] = []
    store.client.meta.events.register("before-send.s3.ListObjectsV2", lambda request, **_: listings.append(request.url))

    assert store.list_keys("raw/", page_size=2) == [f"raw/2026/{i:02d}" for i in range(5)]
    assert len(listings) == 3  # five keys, two a page
    assert store.list_keys("raw/", bucket=buckets.read) == ["raw/2026/read-only"]


def test_the_store_can_write_only_its_write_bucket(make_store, buckets, s3_admin):
    """`put` has no bucket argument: the read bucket is unreachable for writes whatever the caller does."""
    store = make_store()
    store.put("rawdata/azure/x.parquet", b"x")
    assert s3_admin.get_object(Bucket=buckets.write, Key="rawdata/azure/x.parquet")["Body"].read() == b"x"
    assert store.list_keys("", bucket=buckets.read) == []


@pytest.mark.parametrize("env", ["test", "local"])
def test_the_production_bucket_is_refused_outside_prod_before_any_client_or_connection(env):
    from resources.s3 import S3Store

    # nothing listens on port 9: any attempt to connect would fail (slowly, with retries) or time out
    store = S3Store(env=env, write_bucket="spotlake", read_bucket="spotlake", endpoint_url="http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(WriteRefusedError, match=f"production bucket 'spotlake'.*{env}"):
        store.put("latest_data/latest_azure.json", b"[]", public=True)
    with pytest.raises(WriteRefusedError):
        store.get("latest_data/latest_azure.json")
    assert time.monotonic() - started < 0.5
    assert store._client is None  # no client was even created


def test_public_writes_carry_the_public_read_acl(make_store, buckets, s3_admin):
    store = make_store()
    store.put("latest_data/latest_azure.json", b"[]", public=True, content_type="application/json")
    store.put("private/state.json", b"{}")

    assert public_read_granted(s3_admin, buckets.write, "latest_data/latest_azure.json")
    assert not public_read_granted(s3_admin, buckets.write, "private/state.json")


def test_two_writers_with_the_same_etag_one_wins(make_store, buckets):
    first, second = make_store(), make_store()
    etag = first.put("sps/state.json", b"v0")
    new_etag = first.put("sps/state.json", b"v1-first", if_match=etag)
    with pytest.raises(PreconditionFailed) as err:
        second.put("sps/state.json", b"v1-second", if_match=etag)
    assert f"s3://{buckets.write}/sps/state.json" in str(err.value)
    assert second.head("sps/state.json")["ETag"] == new_etag
    with pytest.raises(PreconditionFailed, match="If-None-Match"):
        second.put("sps/state.json", b"other", if_none_match=True)


def test_concurrent_updates_lose_nothing_and_start_from_the_read_bucket(make_store, buckets, s3_admin):
    """Eight writers each append their name 5 times through `update`: every append survives, and the first
    version came from the read bucket, which stays untouched."""
    s3_admin.put_object(Bucket=buckets.read, Key="sps/learned.json", Body=b"prod")
    stores = [make_store() for _ in range(8)]

    def append(store, name):
        for _ in range(5):
            store.update(
                "sps/learned.json",
                lambda current: (Version((current.body if current else b"") + b"," + name.encode()), None),
                content_type="text/plain",
                sleep=lambda s: None,
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(append, stores, [f"w{i}" for i in range(8)]))
    parts = stores[0].get("sps/learned.json").split(b",")
    assert parts[0] == b"prod" and sorted(parts[1:]) == sorted(f"w{i}".encode() for i in range(8) for _ in range(5))
    assert s3_admin.get_object(Bucket=buckets.read, Key="sps/learned.json")["Body"].read() == b"prod"


def test_an_update_that_changes_nothing_writes_nothing(make_store):
    store = make_store()
    store.put("k.json", b"same")
    etag = store.head("k.json")["ETag"]
    assert store.update("k.json", lambda current: (current, "kept"), content_type="application/json") == "kept"
    assert store.update("k.json", lambda current: (None, "skipped"), content_type="application/json") == "skipped"
    assert store.head("k.json")["ETag"] == etag


def test_rewriting_identical_bytes_keeps_the_etag(make_store):
    store = make_store()
    etag = store.put("k", b"same bytes")
    assert store.put("k", b"same bytes") == etag
    assert store.put("k", b"other bytes") != etag
