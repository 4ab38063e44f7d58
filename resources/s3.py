"""S3 access with split buckets: every write goes to the write bucket, reads fall back to the read bucket.

`test` replays production's raw data and learned SPS lists from the production bucket but must never change
it (docs/design.md "Environments"). So the one write primitive, `put`, can only address the write bucket.

Credentials come from the normal boto3 chain (environment, profile, instance/task role); the local stack
exports fake AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for its moto server.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import PrivateAttr

from .aws import describe_error, error_code, http_status, make_client
from .lockdown import EnvironmentBound
from .retry import Backoff
from .settings import PROD_BUCKET, Settings

# Codes S3 answers for "this key does not exist" (GET says NoSuchKey, HEAD only has a status).
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# What S3 answers instead for a missing key when the caller may not list the bucket unconditionally: the run role's
# ListBucket is conditioned on Azure's prefixes (infra/modules/collector/iam.tf), which a GetObject does not carry.
_DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden"})
# Codes of a lost conditional write: 412 when the condition is false, 409 when a concurrent write raced ours.
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
T = TypeVar("T")
# Writers that lost a conditional write retry soon: the winner's write is already done.
UPDATE_BACKOFF = Backoff(base_seconds=0.02, max_seconds=1.0)


class S3StoreError(RuntimeError):
    """An S3 request failed for a reason other than a missing key."""


class PreconditionFailed(S3StoreError):
    """A conditional write lost: the object was created or changed since the writer read it."""


class WriteRefusedError(S3StoreError):
    """A non-prod environment aimed at the production bucket (raised before any request)."""


class UpdateConflictError(S3StoreError):
    """A read-modify-write kept losing to other writers."""


def _is_not_found(exc: ClientError) -> bool:
    return error_code(exc) in _NOT_FOUND_CODES


@dataclass(frozen=True)
class Version:
    """One version of an object: its bytes and its user metadata (x-amz-meta-*, lower-case names)."""

    body: bytes
    metadata: Mapping[str, str] = field(default_factory=dict)


class S3Store(EnvironmentBound):
    """Objects in the environment's S3 buckets: writes go to `write_bucket` only, reads fall back to
    `read_bucket`. Every field comes from the environment (resources/lockdown.py): a run's config cannot set one."""

    PROTECTED = {
        "write_bucket": "SPOTLAKE_WRITE_BUCKET",
        "read_bucket": "SPOTLAKE_READ_BUCKET",
        "env": "SPOTLAKE_ENV",
        "endpoint_url": "SPOTLAKE_AWS_ENDPOINT_URL",
        "region_name": "SPOTLAKE_AWS_REGION",
    }

    write_bucket: str
    read_bucket: str
    env: str = "local"  # only "prod" may use the production bucket as its write bucket
    endpoint_url: str | None = None  # None: the real AWS endpoint; the local stack points this at moto
    region_name: str = "us-west-2"

    _client: Any = PrivateAttr(default=None)
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def settings_values(cls, settings: Settings) -> dict[str, Any]:
        return dict(
            write_bucket=settings.write_bucket,
            read_bucket=settings.read_bucket,
            env=settings.env,
            endpoint_url=settings.aws_endpoint_url,
            region_name=settings.aws_region,
        )

    def check_guards(self) -> None:
        if self.write_bucket == PROD_BUCKET and self.env != "prod":
            raise WriteRefusedError(
                f"refused to use the production bucket {PROD_BUCKET!r} as the write bucket in environment {self.env!r}"
            )

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use (never at definition load) and shared by threads; the
        production-bucket guard sits here, so no request can be sent before it."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self.check_guards()
                    self._client = make_client(
                        "s3", endpoint_url=self.endpoint_url, region_name=self.region_name, read_timeout=60
                    )
        return self._client

    @property
    def read_order(self) -> tuple[str, ...]:
        """Buckets a read tries, in order: the write bucket, then the read bucket when it differs."""
        if self.read_bucket == self.write_bucket:
            return (self.write_bucket,)
        return (self.write_bucket, self.read_bucket)

    def _fail(self, operation: str, bucket: str, key: str, exc: Exception) -> S3StoreError:
        where = f"s3://{bucket}/{key}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")
        return S3StoreError(f"S3 {operation} of {where} failed: {describe_error(exc)}")

    # ---- reads

    def _absent(self, bucket: str, key: str, exc: ClientError) -> bool:
        """Whether a failed read of `key` means that the key does not exist: a 404, or a 403 that a listing of the
        key's own prefix explains (the key is not listed). A 403 on a listed key, or a listing denied too, is a real
        refusal: the caller raises it."""
        if _is_not_found(exc):
            return True
        if error_code(exc) not in _DENIED_CODES:
            return False
        try:
            listed = self.client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
        except (ClientError, BotoCoreError):
            return False
        # the key itself sorts first among the keys it prefixes
        return not (listed and listed[0]["Key"] == key)

    def _get_object(self, bucket: str, key: str) -> tuple[bytes, str, dict[str, str]] | None:
        """(body, ETag, user metadata) of one object in one bucket, None when the key does not exist there."""
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
            return response["Body"].read(), response["ETag"], response.get("Metadata", {})
        except ClientError as exc:
            if self._absent(bucket, key, exc):
                return None
            raise self._fail("GetObject", bucket, key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("GetObject", bucket, key, exc) from exc

    def get_with_source(self, key: str) -> tuple[bytes, str] | None:
        """(body, bucket it came from): the write bucket first, then the read bucket; None if in neither."""
        for bucket in self.read_order:
            found = self._get_object(bucket, key)
            if found is not None:
                return found[0], bucket
        return None

    def get(self, key: str) -> bytes | None:
        """The object's bytes from the write bucket, else the read bucket; None if in neither."""
        found = self.get_with_source(key)
        return None if found is None else found[0]

    def get_from(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes from one named bucket (e.g. the legacy import bucket); None if missing."""
        found = self._get_object(bucket, key)
        return None if found is None else found[0]

    def head(self, key: str, bucket: str | None = None) -> dict[str, Any] | None:
        """HeadObject response (ETag, ContentLength, ContentType, ...) in `bucket` (default: write bucket)."""
        bucket = bucket or self.write_bucket
        try:
            response = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if self._absent(bucket, key, exc):
                return None
            raise self._fail("HeadObject", bucket, key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("HeadObject", bucket, key, exc) from exc
        response.pop("ResponseMetadata", None)
        return response

    def list_keys(self, prefix: str, bucket: str | None = None, *, page_size: int = 1000) -> list[str]:
        """Every key under `prefix` in `bucket` (default: write bucket), across all result pages."""
        return list(self.iter_keys(prefix, bucket, page_size=page_size))

    def iter_keys(
        self, prefix: str, bucket: str | None = None, *, start_after: str | None = None, page_size: int = 1000
    ) -> Iterator[str]:
        """Keys under `prefix` in `bucket` (default: write bucket) in key order, after `start_after` if given,
        fetched a page at a time as the caller goes on."""
        bucket = bucket or self.write_bucket
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "PaginationConfig": {"PageSize": page_size}}
        if start_after:
            params["StartAfter"] = start_after
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**params):
                for item in page.get("Contents", []):
                    yield item["Key"]
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("ListObjectsV2", bucket, prefix + "*", exc) from exc

    def has_any(self, prefix: str, bucket: str | None = None) -> bool:
        """Whether any key starts with `prefix` in `bucket`, or by default in the write or the read bucket."""
        for name in (bucket,) if bucket else self.read_order:
            try:
                if self.client.list_objects_v2(Bucket=name, Prefix=prefix, MaxKeys=1).get("KeyCount", 0):
                    return True
            except (ClientError, BotoCoreError) as exc:
                raise self._fail("ListObjectsV2", name, prefix + "*", exc) from exc
        return False

    def _get_for_update(self, key: str, from_read_bucket: bool) -> tuple[Version | None, str | None]:
        """(current version, ETag) for a read-modify-write: the ETag is the write bucket's; when the write bucket has
        no copy yet the initial value comes from the read bucket and the ETag is None (write back with
        If-None-Match)."""
        for bucket in self.read_order if from_read_bucket else (self.write_bucket,):
            found = self._get_object(bucket, key)
            if found is not None:
                body, etag, metadata = found
                return Version(body, metadata), etag if bucket == self.write_bucket else None
        return None, None

    # ---- writes

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str | None = None,
        public: bool = False,
        if_none_match: bool = False,
        if_match: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """Write one object to the write bucket (atomic per object in S3); returns its ETag. There is no way to
        write any other bucket. `metadata` is stored as the object's user metadata (readable by `head`).

        `public=True` sets the legacy public-read ACL (the bucket must allow ACLs).
        `if_none_match=True` creates only if the key is absent; `if_match=etag` replaces only that version.
        A lost condition raises PreconditionFailed.
        """
        bucket = self.write_bucket
        if if_none_match and if_match is not None:
            raise ValueError(f"put of s3://{bucket}/{key}: if_none_match and if_match exclude each other")
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": body}
        if content_type:
            params["ContentType"] = content_type
        if public:
            params["ACL"] = "public-read"
        if if_none_match:
            params["IfNoneMatch"] = "*"
        if if_match is not None:
            params["IfMatch"] = if_match
        if metadata:
            params["Metadata"] = dict(metadata)
        try:
            return self.client.put_object(**params)["ETag"]
        except ClientError as exc:
            conditional = if_none_match or if_match is not None
            # If-Match on a key deleted meanwhile answers 404: the expected version is gone, a lost race too
            if conditional and (error_code(exc) in _PRECONDITION_CODES or (if_match and _is_not_found(exc))):
                condition = "If-None-Match: *" if if_none_match else f"If-Match: {if_match}"
                raise PreconditionFailed(
                    f"conditional write of s3://{bucket}/{key} lost ({condition}, HTTP {http_status(exc)} "
                    f"{error_code(exc)}): another writer changed the object since it was read"
                ) from exc
            raise self._fail("PutObject", bucket, key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("PutObject", bucket, key, exc) from exc

    def update(
        self,
        key: str,
        change: Callable[[Version | None], tuple[Version | None, T]],
        *,
        content_type: str,
        public: bool = False,
        first_from_read_bucket: bool = True,
        attempts: int = 30,
        backoff: Backoff = UPDATE_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """Read-modify-write of one object that concurrent runs share (the SPS rotation state, the query selector,
        the latest file): `change(current version or None)` returns (the new version, or None to leave the object
        as it is, and a result). The write is conditional on the version read; on a lost race the object is read
        again and `change` applied again, so no writer's update is lost. The first version may come from the read
        bucket (`first_from_read_bucket`). Returns the result of the `change` that was written."""
        rng = random.Random()
        for attempt in range(attempts):
            current, etag = self._get_for_update(key, first_from_read_bucket)
            new, result = change(current)
            if new is None or (new == current and etag is not None):
                return result
            try:
                self.put(
                    key,
                    new.body,
                    content_type=content_type,
                    public=public,
                    if_none_match=etag is None,
                    if_match=etag,
                    metadata=new.metadata,
                )
                return result
            except PreconditionFailed:
                sleep(backoff.delay(attempt, rng=rng))
        raise UpdateConflictError(
            f"s3://{self.write_bucket}/{key}: still conflicting with other writers after {attempts} attempts"
        )
