"""S3Store against a real moto server over HTTP."""

from __future__ import annotations

import time

import pytest

from resources.s3 import PreconditionFailed, S3StoreError, WriteRefusedError

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
    assert store.get_etag("state/a.json") == etag
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
    store.client.meta.events.register(
        "before-send.s3.ListObjectsV2", lambda request, **_: listings.append(request.url)
    )

    assert store.list_keys("raw/", page_size=2) == [f"raw/2026/{i:02d}" for i in range(5)]
    assert len(listings) == 3  # five keys, two a page
    assert store.list_keys("raw/", bucket=buckets.read) == ["raw/2026/read-only"]


def test_write_to_another_bucket_is_refused_without_any_request(make_store, buckets):
    store = make_store()
    sent: list[str] = []
    store.client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    store.put("allowed", b"x")
    assert len(sent) == 1  # the hook sees the store's requests

    with pytest.raises(WriteRefusedError) as err:
        store.put_to(buckets.read, "rawdata/azure/x.parquet", b"x")
    assert len(sent) == 1
    message = str(err.value)
    assert f"s3://{buckets.read}/rawdata/azure/x.parquet" in message and repr(buckets.write) in message


def test_refusal_happens_before_any_client_or_connection():
    from resources.s3 import S3Store

    # nothing listens on port 9: any attempt to connect would fail (slowly, with retries) or time out
    store = S3Store(write_bucket="spotlake-test", read_bucket="spotlake", endpoint_url="http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(WriteRefusedError, match="s3://spotlake/latest_data/latest_azure.json"):
        store.put_to("spotlake", "latest_data/latest_azure.json", b"[]", public=True)
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
    first.put("sps/state.json", b"v0")
    body_a, etag_a = first.get_for_update("sps/state.json")
    body_b, etag_b = second.get_for_update("sps/state.json")
    assert body_a == body_b == b"v0" and etag_a == etag_b is not None

    new_etag = first.put("sps/state.json", b"v1-first", if_match=etag_a)
    with pytest.raises(PreconditionFailed) as err:
        second.put("sps/state.json", b"v1-second", if_match=etag_b)
    assert f"s3://{buckets.write}/sps/state.json" in str(err.value)
    assert second.get_for_update("sps/state.json") == (b"v1-first", new_etag)


def test_create_only_write_and_initial_value_from_the_read_bucket(make_store, buckets, s3_admin):
    s3_admin.put_object(Bucket=buckets.read, Key="sps/learned.json", Body=b"prod-list")
    first, second = make_store(), make_store()

    # the initial value comes from the read bucket, with no ETag: write back create-only
    assert first.get_for_update("sps/learned.json") == (b"prod-list", None)
    first.put("sps/learned.json", b"test-list", if_none_match=True)
    with pytest.raises(PreconditionFailed, match="If-None-Match"):
        second.put("sps/learned.json", b"other-list", if_none_match=True)
    assert first.get("sps/learned.json") == b"test-list"
    assert first.get_for_update("no/state") == (None, None)


def test_rewriting_identical_bytes_keeps_the_etag(make_store):
    store = make_store()
    etag = store.put("k", b"same bytes")
    assert store.put("k", b"same bytes") == etag
    assert store.put("k", b"other bytes") != etag
