"""The query API's settings, from the Lambda's environment, and its AWS clients (resources/query_api/handler.py
serves with them; docs/web-site.md lists the variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from resources.query_api.reader import QUERY_WORKERS
from resources.settings import SettingsError, load_settings

SITE_ORIGIN = "https://spotlake.ddps.cloud"
DEFAULT_TIMEOUT_SECONDS = 20.0
ALLOWED_ORIGINS_ENV = "SPOTLAKE_QUERY_API_ALLOWED_ORIGINS"
TIMEOUT_ENV = "SPOTLAKE_QUERY_API_TIMEOUT_SECONDS"
ERROR_STATUS_ENV = "SPOTLAKE_QUERY_API_ERROR_STATUS"
ARCHIVE_BUCKET_ENV = "SPOTLAKE_ARCHIVE_BUCKET"  # the bucket of the archive (archive/azure/history/); unset: none


@dataclass(frozen=True)
class QueryApiConfig:
    table_name: str
    aws_region: str
    endpoint_url: str | None = None
    allowed_origins: tuple[str, ...] = (SITE_ORIGIN,)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    errors_in_body: bool = True  # HTTP 200 with the outcome in the body: the only errors the site can display
    archive_bucket: str | None = None  # where months past the retention are read (docs/design.md "Hot and cold")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> QueryApiConfig:
        """The API's settings from environment variables; SettingsError names the variable at fault."""
        environ = os.environ if environ is None else environ
        settings = load_settings(environ)
        origins = parse_origins(environ.get(ALLOWED_ORIGINS_ENV, SITE_ORIGIN))
        raw_timeout = environ.get(TIMEOUT_ENV, "").strip() or str(DEFAULT_TIMEOUT_SECONDS)
        try:
            timeout = float(raw_timeout)
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 900:
            raise SettingsError(f"{TIMEOUT_ENV}={raw_timeout!r} must be a number of seconds in (0, 900]")
        mode = environ.get(ERROR_STATUS_ENV, "").strip().lower() or "body"
        if mode not in ("body", "http"):
            raise SettingsError(f"{ERROR_STATUS_ENV}={mode!r} must be 'body' (HTTP 200, the site's way) or 'http'")
        return cls(
            table_name=settings.dynamodb_table,
            aws_region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
            allowed_origins=origins,
            timeout_seconds=timeout,
            errors_in_body=mode == "body",
            archive_bucket=environ.get(ARCHIVE_BUCKET_ENV, "").strip() or None,
        )


def parse_origins(text: str) -> tuple[str, ...]:
    """Comma-separated origins (`scheme://host[:port]`, no path) or `*`, normalised to lower case."""
    origins = []
    for raw in text.split(","):
        origin = raw.strip().rstrip("/").lower()
        if not origin:
            continue
        scheme, sep, host = origin.partition("://")
        if origin != "*" and (not sep or scheme not in ("http", "https") or not host or "/" in host):
            raise SettingsError(
                f"{ALLOWED_ORIGINS_ENV}: {raw.strip()!r} is not an origin such as {SITE_ORIGIN} (or '*' for any)"
            )
        origins.append(origin)
    if not origins:
        raise SettingsError(f"{ALLOWED_ORIGINS_ENV} names no origin; the site's is {SITE_ORIGIN}")
    return tuple(origins)


def make_client(
    config: QueryApiConfig, *, read_timeout: float = 5.0, service: str = "dynamodb", **credentials: str
) -> Any:
    """A DynamoDB client with short timeouts and few retries: the whole query has `timeout_seconds` (a DynamoDB
    Query page takes milliseconds; moto's, on a big local table, can take seconds: the local stack waits longer)."""
    boto_config = Config(
        region_name=config.aws_region,
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=2,
        read_timeout=read_timeout,
        max_pool_connections=QUERY_WORKERS,
    )
    # a session of its own: boto3's default session is not safe to share between threads
    return boto3.session.Session().client(
        service, endpoint_url=config.endpoint_url, config=boto_config, **credentials
    )
