"""Shared AWS fixtures: one moto server over HTTP for the whole session, fresh buckets per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest

from resources.s3 import S3Store
from spotlake_assets.local.aws import LOCAL_AWS_ENV, local_client, provision, start_moto_server

AWS_REGION = "us-west-2"

# `make test` runs the files on two pytest-xdist workers, a file at a time each, in this order (--dist loadfile
# --no-loadscope-reorder): the longest files start first, so that the workers end together instead of one running
# the long files alone at the end.
LONGEST_FIRST = (
    "test_soak.py",
    "test_orchestration.py",
    "test_production_instance.py",
    "test_ui_browser.py",
    "test_continuity.py",
    "test_dataset.py",
    "test_memory_benchmarks.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: every file keeps its own order


class Buckets(NamedTuple):
    read: str
    write: str


@pytest.fixture(scope="session", autouse=True)
def local_aws_credentials() -> Iterator[None]:
    """The stack's fake credentials, exported before any test (and restored after the session): resources under
    test use the normal boto3 credential chain. Set first, so that every MonkeyPatch of a test or module records
    them as the value to restore; exported only when moto was first needed, a module's MonkeyPatch set up
    earlier would remove them at its teardown, and every later test of that worker would fail to sign."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in LOCAL_AWS_ENV.items():
            env.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.delenv(name, raising=False)
        yield


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """Endpoint URL of a moto server shared by the session."""
    local = start_moto_server()
    try:
        yield local.endpoint_url
    finally:
        local.stop()


@pytest.fixture
def buckets(aws_endpoint: str) -> Buckets:
    """A fresh pair of uniquely named buckets (moto's state lives as long as the session)."""
    suffix = uuid.uuid4().hex[:12]
    pair = Buckets(read=f"spotlake-read-{suffix}", write=f"spotlake-write-{suffix}")
    provision(aws_endpoint, list(pair), AWS_REGION)
    return pair


@pytest.fixture
def s3_admin(aws_endpoint: str) -> Any:
    """A plain boto3 S3 client with no write guard, to seed the read bucket and inspect objects."""
    return local_client("s3", aws_endpoint, AWS_REGION)


@pytest.fixture
def make_store(aws_endpoint: str, buckets: Buckets) -> Callable[..., S3Store]:
    """Builds an S3Store on the session's moto server and this test's buckets; keyword arguments override."""

    def make(**overrides: Any) -> S3Store:
        fields: dict[str, Any] = dict(
            write_bucket=buckets.write,
            read_bucket=buckets.read,
            endpoint_url=aws_endpoint,
            region_name=AWS_REGION,
        )
        return S3Store(**{**fields, **overrides})

    return make
