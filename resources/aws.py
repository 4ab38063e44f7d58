"""boto3 clients and their errors, the same way for every AWS resource (S3, DynamoDB, SSM)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError


def make_client(
    service: str,
    *,
    endpoint_url: str | None,
    region_name: str,
    read_timeout: float = 30,
    max_pool_connections: int = 16,
    credentials: Mapping[str, str] | None = None,
) -> Any:
    """A client with bounded standard retries (throttling included) and timeouts, from a session of its own
    (boto3's default session is not safe to share between threads). Custom endpoints (moto) get path-style
    S3 addressing, since they do not serve virtual-hosted bucket names. `credentials` (aws_access_key_id,
    aws_secret_access_key) are for a local endpoint only; otherwise boto3's usual chain supplies them."""
    config = Config(
        region_name=region_name,
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
        s3={"addressing_style": "path"} if endpoint_url and service == "s3" else None,
    )
    return boto3.session.Session().client(service, endpoint_url=endpoint_url, config=config, **(credentials or {}))


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def describe_error(exc: Exception) -> str:
    """`HTTP status Code: message` of a botocore error (no request data, so no secret)."""
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        return f"HTTP {http_status(exc)} {error_code(exc)}: {message}".strip()
    return f"{type(exc).__name__}: {exc}"


HOW_TO_PROVIDE_CREDENTIALS = (
    "provide them with AWS_PROFILE (a profile in ~/.aws/config or ~/.aws/credentials), or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or run where an instance or task role applies"
)


def missing_credentials(exc: BaseException, who: str) -> str | None:
    """One line for `who` (e.g. "SPOTLAKE_ENV=prod") when `exc`, or an error it was raised from, is boto3 finding no
    AWS credentials or only part of them: which, and how to provide them. None for any other error. (The failed
    call's own text names the table and item keys, which say nothing useful here.)"""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, NoCredentialsError):
            return f"no AWS credentials found for {who}: {HOW_TO_PROVIDE_CREDENTIALS}"
        if isinstance(cause, PartialCredentialsError):
            # botocore's text names the provider and the missing variable, never a value
            return f"incomplete AWS credentials for {who} ({cause}): {HOW_TO_PROVIDE_CREDENTIALS}"
        cause = cause.__cause__ or cause.__context__
    return None
