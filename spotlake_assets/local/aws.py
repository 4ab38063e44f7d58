"""The AWS side of the embedded local stack: moto's server (real S3 and DynamoDB wire protocol over HTTP; in this
process, or for the CLI's commands in a child process of its own, moto_child.py), its buckets, and the legacy
`AzureAuth` table.

Clients made here use LOCAL_AWS_CREDENTIALS explicitly, so nothing global is changed. S3Store and the other
resources take credentials from the normal boto3 chain: the stack exports LOCAL_AWS_ENV (fake
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) for local runs, so no real credential is ever used against moto.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
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
    """A running moto server; `endpoint_url` is the one endpoint for every AWS service. It runs in this process
    (`server`, the tests' and benchmarks' way: they reach into moto's backends) or in a child (`process`, the
    CLI's: moto keeps all data in memory, and the collector's own memory is then measured apart)."""

    server: ThreadedMotoServer | None
    endpoint_url: str
    process: subprocess.Popen | None = None
    peak_rss: int | None = None  # the child's peak resident set in bytes, once stopped (None: in this process)

    def current_peak_rss(self) -> int | None:
        """The child's peak resident set so far in bytes (its RSS now where no peak is known); None in-process."""
        if self.process is None or self.process.returncode is not None:
            return self.peak_rss
        return _peak_rss(self.process.pid) or self.peak_rss

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.process is not None and self.process.returncode is None:
            self.peak_rss = self.current_peak_rss()
            _stop_child(self.process)


# how long the child may take to import moto and listen (a loaded 2-core machine takes a few seconds)
MOTO_START_SECONDS = 120


def start_moto_server(host: str = "127.0.0.1", port: int = 0, *, separate_process: bool = False) -> LocalAws:
    """Start moto's server, in this process (a thread) or with `separate_process` in a child process of its own
    (spotlake_assets/local/moto_child.py), which ends with this process: when stopped, when this process exits or is
    killed (the child sees its stdin's end of file; on Linux also PR_SET_PDEATHSIG), and never by Ctrl-C (it ignores
    SIGINT and is in a process group of its own: this process handles Ctrl-C and stops it). Port 0 lets the OS pick
    a free port (no race between picking and binding)."""
    if separate_process:
        return _start_moto_process(host, port)
    atomic_conditional_puts()  # as S3: a conditional PUT's check and write are one step (moto_fidelity.py)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return LocalAws(server=server, endpoint_url=f"http://{bound_host}:{bound_port}")


def _start_moto_process(host: str, port: int) -> LocalAws:
    script = Path(__file__).with_name("moto_child.py")
    with tempfile.TemporaryFile() as errors:  # read only if it fails to start; the child writes nothing after that
        process = subprocess.Popen(
            [sys.executable, str(script), host, str(port), str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, process_group=0,
        )  # fmt: skip
        try:
            line = _read_line(process, MOTO_START_SECONDS)
        except BaseException:
            _stop_child(process)
            raise
        if not line.strip().isdigit():
            _stop_child(process)
            errors.seek(0)
            last = (errors.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"moto's server did not start on {host}:{port}: {last}")
    return LocalAws(server=None, endpoint_url=f"http://{host}:{int(line)}", process=process)


def _read_line(process: subprocess.Popen, seconds: float) -> str:
    """The child's first line on stdout ("" if it ended first or said nothing within `seconds`)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + seconds
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return ""
        chunk = os.read(fd, 64)
        if not chunk:
            return ""
        data += chunk
    return data.decode()


def _stop_child(process: subprocess.Popen) -> None:
    """Close its stdin (it exits at once) and wait for it; kill it if it has not gone within 10 s."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _peak_rss(pid: int) -> int | None:
    """A live process's peak resident set in bytes (Linux: VmHWM), else its RSS now (psutil); None if gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import psutil

    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return None


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
