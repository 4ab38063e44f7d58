"""Environments: `prod`, `test`, `local`, chosen by SPOTLAKE_ENV, every name and endpoint overridable.

Reading settings is pure: it looks at environment variables only, never at the network, so that
`dagster definitions validate` works for every environment without credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from spotlake_assets.core.timekeys import DEFAULT_PARTITION_START, check_partition_key

VALID_ENVIRONMENTS = ("prod", "test", "local")

# The embedded local stack listens on these ports unless told otherwise (see spotlake_assets/local/stack.py).
LOCAL_AWS_PORT = 4566
LOCAL_AZURE_PORT = 4580
LOCAL_AZURE_LOGIN_PORT = 4581


# Production's names: no other environment may write them (S3Store and HistoryTable check again at first use).
PROD_BUCKET = "spotlake"
PROD_TABLE = "azure"


@dataclass(frozen=True)
class Settings:
    env: str
    write_bucket: str
    read_bucket: str
    dynamodb_table: str
    aws_region: str = "us-west-2"
    aws_endpoint_url: str | None = None  # None: the real AWS endpoints
    azure_prices_url: str = "https://prices.azure.com/api/retail/prices"
    azure_management_url: str = "https://management.azure.com"
    azure_authority: str = "login.microsoftonline.com"
    azure_ca_bundle: str | None = None  # a CA file for a local TLS login endpoint; None: system CAs
    azure_auth_table: str = "AzureAuth"  # legacy credentials table, read only
    # First 10-minute partition of the definitions (docs/design.md "Partitions"); moving it forward is safe.
    partition_start: str = DEFAULT_PARTITION_START


_DEFAULTS: dict[str, dict[str, object]] = {
    "prod": dict(write_bucket=PROD_BUCKET, read_bucket=PROD_BUCKET, dynamodb_table=PROD_TABLE),
    "test": dict(write_bucket="spotlake-test", read_bucket=PROD_BUCKET, dynamodb_table="azure-test"),
    # local mirrors `test`: a separate write bucket beside a read-only "production-like" bucket,
    # so a laptop exercises the same fallback and write guard.
    "local": dict(
        write_bucket="spotlake-local",
        read_bucket=PROD_BUCKET,
        dynamodb_table="azure-local",
        aws_endpoint_url=f"http://127.0.0.1:{LOCAL_AWS_PORT}",
        azure_prices_url=f"http://127.0.0.1:{LOCAL_AZURE_PORT}/api/retail/prices",
        azure_management_url=f"http://127.0.0.1:{LOCAL_AZURE_PORT}",
        azure_authority=f"127.0.0.1:{LOCAL_AZURE_LOGIN_PORT}",
    ),
}

# setting name -> environment variable that overrides it
ENV_VARS: dict[str, str] = {
    "write_bucket": "SPOTLAKE_WRITE_BUCKET",
    "read_bucket": "SPOTLAKE_READ_BUCKET",
    "dynamodb_table": "SPOTLAKE_DYNAMODB_TABLE",
    "aws_region": "SPOTLAKE_AWS_REGION",
    "aws_endpoint_url": "SPOTLAKE_AWS_ENDPOINT_URL",
    "azure_prices_url": "SPOTLAKE_AZURE_PRICES_URL",
    "azure_management_url": "SPOTLAKE_AZURE_MANAGEMENT_URL",
    "azure_authority": "SPOTLAKE_AZURE_AUTHORITY",
    "azure_ca_bundle": "SPOTLAKE_AZURE_CA_BUNDLE",
    "azure_auth_table": "SPOTLAKE_AZURE_AUTH_TABLE",
    "partition_start": "SPOTLAKE_PARTITION_START",
}
assert set(ENV_VARS) == {f.name for f in fields(Settings)} - {"env"}


class SettingsError(ValueError):
    pass


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for SPOTLAKE_ENV (default `local`) with SPOTLAKE_* overrides applied."""
    environ = os.environ if environ is None else environ
    env = environ.get("SPOTLAKE_ENV", "local").strip() or "local"
    if env not in VALID_ENVIRONMENTS:
        raise SettingsError(
            f"SPOTLAKE_ENV={env!r} is not a known environment; valid ones: {', '.join(VALID_ENVIRONMENTS)}"
        )
    settings = Settings(env=env, **_DEFAULTS[env])  # type: ignore[arg-type]
    overrides = {name: environ[var].strip() for name, var in ENV_VARS.items() if environ.get(var, "").strip()}
    settings = replace(settings, **overrides)
    try:
        check_partition_key(settings.partition_start)
    except ValueError as exc:
        raise SettingsError(f"{ENV_VARS['partition_start']}: {exc}") from None
    for name in ("write_bucket", "read_bucket", "dynamodb_table"):
        if not getattr(settings, name):
            raise SettingsError(f"setting {name} ({ENV_VARS[name]}) must not be empty")
    if env == "test" and settings.write_bucket == _DEFAULTS["prod"]["write_bucket"]:
        raise SettingsError(
            f"SPOTLAKE_ENV=test must not write the production bucket {settings.write_bucket!r} "
            f"(check {ENV_VARS['write_bucket']})"
        )
    if env == "test" and settings.dynamodb_table == _DEFAULTS["prod"]["dynamodb_table"]:
        raise SettingsError(
            f"SPOTLAKE_ENV=test must not write the production table {settings.dynamodb_table!r} "
            f"(check {ENV_VARS['dynamodb_table']})"
        )
    return settings
