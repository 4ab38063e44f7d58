"""S3Store against a real moto server over HTTP."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

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


def test_two_conditional_puts_racing_in_the_local_s3_one_wins_as_in_s3(make_store, monkeypatch):
    """S3 checks a precondition and stores as one step; moto did not (a lost update in CI under load). Here moto is
    made slow between its check and its store, so both writers pass the check unless the local stack's fidelity
    lock (spotlake_assets/local/moto_fidelity.py) holds: exactly one of the two wins."""
    from moto.s3.models import S3Backend

    store = make_store()
    etag = store.put("race.json", b"v0")
    looked_up = S3Backend.get_object

    def slow_get_object(self, bucket_name, key_name, *args, **kwargs):
        found = looked_up(self, bucket_name, key_name, *args, **kwargs)
        if key_name == "race.json":
            time.sleep(0.3)  # the window between moto's precondition check and its write
        return found

    monkeypatch.setattr(S3Backend, "get_object", slow_get_object)

    def write(body: bytes) -> str:
        try:
            make_store().put("race.json", body, if_match=etag)
            return "won"
        except PreconditionFailed:
            return "refused"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(write, [b"a", b"b"]))
    assert outcomes == ["refused", "won"]


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


# --- a run role whose ListBucket is conditioned on Azure's prefixes (infra/modules/collector/iam.tf) -----------------


class PrefixPolicyProxy(ThreadingHTTPServer):
    """An HTTP proxy in front of moto that answers as S3 does for a role allowed to GetObject under `readable` and to
    ListBucket only with an s3:prefix under `listable`: 403 AccessDenied for an object read outside `readable`, for a
    missing key (S3 answers 404 only to a caller with an unconditional ListBucket) and for a listing of any other
    prefix. Everything else goes to moto as it came."""

    def __init__(self, upstream: str, readable: tuple[str, ...], listable: tuple[str, ...]) -> None:
        self.upstream = urlsplit(upstream).netloc
        self.readable, self.listable = readable, listable
        super().__init__(("127.0.0.1", 0), PrefixPolicyHandler)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class PrefixPolicyHandler(BaseHTTPRequestHandler):
    server: PrefixPolicyProxy

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.relay()

    def do_HEAD(self) -> None:
        self.relay()

    def do_PUT(self) -> None:
        self.relay()

    def relay(self) -> None:
        url = urlsplit(self.path)
        _, _, key = unquote(url.path).lstrip("/").partition("/")
        query = parse_qs(url.query, keep_blank_values=True)
        policy = self.server
        if self.command in ("GET", "HEAD") and not key and "list-type" in query:
            if not query.get("prefix", [""])[0].startswith(policy.listable):
                return self.deny()
        elif self.command in ("GET", "HEAD") and key and not key.startswith(policy.readable):
            return self.deny()
        upstream = HTTPConnection(policy.upstream, timeout=30)
        length = int(self.headers.get("Content-Length") or 0)
        upstream.request(self.command, self.path, self.rfile.read(length) if length else None, dict(self.headers))
        answer = upstream.getresponse()
        body = answer.read()
        if self.command in ("GET", "HEAD") and key and answer.status == 404:
            return self.deny()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection"):
                self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def deny(self) -> None:
        body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture
def prefix_policy(aws_endpoint):
    proxy = PrefixPolicyProxy(aws_endpoint, readable=("rawdata/azure/",), listable=("rawdata/azure/", "locked/"))
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_a_missing_key_is_absent_when_s3_answers_403_for_want_of_an_unconditional_list(
    make_store, buckets, s3_admin, prefix_policy
):
    """The run role's ListBucket names Azure's prefixes only, so S3 answers 403 for a missing key: the store lists
    the key's own prefix (which the condition allows) and, the key not being there, reads it as absent."""
    store = make_store(endpoint_url=prefix_policy.endpoint_url)
    s3_admin.put_object(Bucket=buckets.read, Key="rawdata/azure/in-read", Body=b"prod")
    s3_admin.put_object(Bucket=buckets.write, Key="rawdata/azure/missing-longer", Body=b"x")

    assert store.get("rawdata/azure/missing") is None  # a longer key under it is listed, not this one
    assert store.head("rawdata/azure/missing") is None
    assert store.get_with_source("rawdata/azure/in-read") == (b"prod", buckets.read)  # the write bucket's 403: absent
    assert store.get("rawdata/azure/missing-longer") == b"x"


def test_a_403_on_a_listed_key_or_with_the_listing_denied_is_an_error_naming_bucket_key_and_endpoint(
    make_store, buckets, s3_admin, prefix_policy
):
    store = make_store(endpoint_url=prefix_policy.endpoint_url)
    s3_admin.put_object(Bucket=buckets.write, Key="locked/x", Body=b"x")  # listed, but not readable
    for read, key in [(store.get, "locked/x"), (store.head, "locked/x"), (store.get, "rawdata/aws/missing")]:
        with pytest.raises(S3StoreError) as err:
            read(key)
        for part in (f"s3://{buckets.write}/{key}", prefix_policy.endpoint_url, "403"):
            assert part in str(err.value), (key, str(err.value))
