"""The AWS side of the embedded local stack: moto's server (real S3 and DynamoDB wire protocol over HTTP),
its buckets, and the legacy `AzureAuth` table.

Clients made here use LOCAL_AWS_CREDENTIALS explicitly, so nothing global is changed. S3Store and the other
resources take credentials from the normal boto3 chain: the stack exports LOCAL_AWS_ENV (fake
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) for local runs, so no real credential is ever used against moto.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from .moto_fidelity import atomic_conditional_puts

# moto accepts any key; these make requests signable without touching a real account
LOCAL_AWS_CREDENTIALS: dict[str, str] = {
    "aws_access_key_id": "spotlake-local",
    "aws_secret_access_key": "spotlake-local-secret",
}
# the same credentials as the environment variables the boto3 chain reads
LOCAL_AWS_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": LOCAL_AWS_CREDENTIALS["aws_access_key_id"],
    "AWS_SECRET_ACCESS_KEY": LOCAL_AWS_CREDENTIALS["aws_secret_access_key"],
}

AZURE_AUTH_ITEM_ID = "login_auth_az_true"  # the legacy collector's item id in AzureAuth


@dataclass
class LocalAws:
    """A running moto server; `endpoint_url` is the one endpoint for every AWS service."""

    server: ThreadedMotoServer
    endpoint_url: str

    def stop(self) -> None:
        self.server.stop()


def start_moto_server(host: str = "127.0.0.1", port: int = 0) -> LocalAws:
    """Start moto's threaded server; port 0 lets the OS pick a free port (no race between picking and
    binding)."""
    atomic_conditional_puts()  # as S3: a conditional PUT's check and write are one step (moto_fidelity.py)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return LocalAws(server=server, endpoint_url=f"http://{bound_host}:{bound_port}")


def local_client(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 client for the local endpoint with the fake local credentials."""
    return boto3.session.Session().client(
        service, endpoint_url=endpoint_url, region_name=region, **LOCAL_AWS_CREDENTIALS
    )


def provision(endpoint_url: str, buckets: list[str], region: str) -> None:
    """Create the buckets; ones that exist already are left as they are."""
    s3 = local_client("s3", endpoint_url, region)
    # us-east-1 is the one region that rejects an explicit location constraint
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    for bucket in buckets:
        try:
            s3.create_bucket(Bucket=bucket, **location)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise RuntimeError(f"creating bucket {bucket!r} at {endpoint_url} failed: {exc}") from exc


def seed_azure_auth(endpoint_url: str, table: str, credentials: dict[str, Any], region: str) -> None:
    """Create the legacy credentials table (hash key `id`) if missing and store a service principal in the
    legacy shape: item id=login_auth_az_true, `data` = JSON
    {tenant_id, client_id, client_secret, subscriptions: "a,b,c"}.

    `credentials` has tenant_id, client_id, client_secret and subscriptions (a list or a comma-separated
    string).
    """
    dynamodb = local_client("dynamodb", endpoint_url, region)
    try:
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1})
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise RuntimeError(f"creating table {table!r} at {endpoint_url} failed: {exc}") from exc
    subscriptions = credentials["subscriptions"]
    if not isinstance(subscriptions, str):
        subscriptions = ",".join(subscriptions)
    data = {
        "tenant_id": credentials["tenant_id"],
        "client_id": credentials["client_id"],
        "client_secret": credentials["client_secret"],
        "subscriptions": subscriptions,
    }
    dynamodb.put_item(
        TableName=table,
        Item={"id": {"S": AZURE_AUTH_ITEM_ID}, "data": {"S": json.dumps(data)}},
    )
