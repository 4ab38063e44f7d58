"""Environments: `prod`, `test`, `local`, chosen by SPOTLAKE_ENV, every name and endpoint overridable.

Reading settings is pure: it looks at environment variables (and, in `prod` and `test`, the AWS shared config file for
boto3's own endpoint settings) only, never at the network, so that `dagster definitions validate` works for every
environment without credentials.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from urllib.parse import urlsplit

from spotlake_assets.core.timekeys import DEFAULT_PARTITION_START, check_partition_key

VALID_ENVIRONMENTS = ("prod", "test", "local")

# The embedded local stack listens on these ports unless told otherwise (see spotlake_assets/local/stack.py).
LOCAL_AWS_PORT = 4566
LOCAL_AZURE_PORT = 4580
LOCAL_AZURE_LOGIN_PORT = 4581


# Production's names: no other environment may write them (S3Store and HistoryTable check again at first use).
PROD_BUCKET = "spotlake"
PROD_TABLE = "azure"
DEPLOYED = ("prod", "test")  # the environments of the image, on real AWS and Azure

# Where credentials and data go in prod and test (docs/security.md "Where credentials are sent"). Public Azure only:
# the collector serves no sovereign cloud, so their login hosts are refused too.
MICROSOFT_LOGIN_HOST = "login.microsoftonline.com"
AZURE_HOSTS = {
    "azure_authority": MICROSOFT_LOGIN_HOST,
    "azure_management_url": "management.azure.com",
    "azure_prices_url": "prices.azure.com",
}
AWS_HOST_SUFFIX = ".amazonaws.com"
# How many SPS calls one run of `test` may make by default: `test` uses production's subscriptions, whose quota
# Azure counts once for both (docs/security.md "SPS quota in test").
TEST_SPS_MAX_CALLS_PER_RUN = 10


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
    sps_max_calls_per_run: int | None = None  # None: no cap (the quota rotation alone limits the calls)
    # First 10-minute partition of the definitions (docs/design.md "Partitions"); moving it forward is safe.
    partition_start: str = DEFAULT_PARTITION_START


_DEFAULTS: dict[str, dict[str, object]] = {
    "prod": dict(write_bucket=PROD_BUCKET, read_bucket=PROD_BUCKET, dynamodb_table=PROD_TABLE),
    "test": dict(
        write_bucket="spotlake-test",
        read_bucket=PROD_BUCKET,
        dynamodb_table="azure-test",
        sps_max_calls_per_run=TEST_SPS_MAX_CALLS_PER_RUN,
    ),
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
    "sps_max_calls_per_run": "SPOTLAKE_SPS_MAX_CALLS_PER_RUN",
    "partition_start": "SPOTLAKE_PARTITION_START",
}
assert set(ENV_VARS) == {f.name for f in fields(Settings)} - {"env"}


class SettingsError(ValueError):
    pass


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for SPOTLAKE_ENV (default `local`) with SPOTLAKE_* overrides applied, refused when they break the
    environment's guards (check_guards)."""
    environ = os.environ if environ is None else environ
    env = environ.get("SPOTLAKE_ENV", "local").strip() or "local"
    if env not in VALID_ENVIRONMENTS:
        raise SettingsError(
            f"SPOTLAKE_ENV={env!r} is not a known environment; valid ones: {', '.join(VALID_ENVIRONMENTS)}"
        )
    settings = Settings(env=env, **_DEFAULTS[env])  # type: ignore[arg-type]
    overrides: dict[str, object] = {
        name: environ[var].strip() for name, var in ENV_VARS.items() if environ.get(var, "").strip()
    }
    if "sps_max_calls_per_run" in overrides:
        overrides["sps_max_calls_per_run"] = _calls(str(overrides["sps_max_calls_per_run"]))
    settings = replace(settings, **overrides)
    try:
        check_partition_key(settings.partition_start)
    except ValueError as exc:
        raise SettingsError(f"{ENV_VARS['partition_start']}: {exc}") from None
    for name in ("write_bucket", "read_bucket", "dynamodb_table"):
        if not getattr(settings, name):
            raise SettingsError(f"setting {name} ({ENV_VARS[name]}) must not be empty")
    check_guards(settings)
    check_boto_endpoints(settings.env, environ)
    return settings


def _calls(value: str) -> int:
    try:
        calls = int(value)
    except ValueError:
        calls = -1
    if calls < 0:
        raise SettingsError(f"{ENV_VARS['sps_max_calls_per_run']}={value!r} is not a whole number of calls (0 or more)")
    return calls


# ---- the environment's guards: one place, used by load_settings and again by each resource when a run starts


def check_write_targets(env: str, *, write_bucket: str | None = None, dynamodb_table: str | None = None) -> None:
    """Only `prod` writes the production bucket and table."""
    if env == "prod":
        return
    if write_bucket == PROD_BUCKET:
        raise SettingsError(
            f"SPOTLAKE_ENV={env} must not write the production bucket {write_bucket!r} "
            f"(check {ENV_VARS['write_bucket']})"
        )
    if dynamodb_table == PROD_TABLE:
        raise SettingsError(
            f"SPOTLAKE_ENV={env} must not write the production table {dynamodb_table!r} "
            f"(check {ENV_VARS['dynamodb_table']})"
        )


def _host(value: str) -> tuple[str, str, str | None]:
    """(scheme, lower-case host, port or None) of a URL or of a bare `host[:port]` (an authority)."""
    parts = urlsplit(value if "://" in value else f"https://{value}")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return parts.scheme, "", None  # nothing we send credentials to has user info or a query
    try:
        port = None if parts.port is None else str(parts.port)
    except ValueError:
        return parts.scheme, "", None
    return parts.scheme, (parts.hostname or "").lower(), port


def is_loopback(value: str) -> bool:
    """Whether a URL or authority names this machine by a loopback address (the embedded emulator and moto server;
    not `localhost`, which name resolution could send elsewhere)."""
    _, host, _ = _host(value)
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_microsoft_login_host(authority: str) -> bool:
    """Whether an authority is public Azure's Entra ID login host, over HTTPS on its default port."""
    scheme, host, port = _host(authority)
    path = urlsplit(authority if "://" in authority else f"https://{authority}").path
    return scheme == "https" and host == MICROSOFT_LOGIN_HOST and port in (None, "443") and path in ("", "/")


def check_endpoints(
    env: str,
    *,
    azure_authority: str | None = None,
    azure_management_url: str | None = None,
    azure_prices_url: str | None = None,
    aws_endpoint_url: str | None = None,
) -> None:
    """In `prod` and `test`, credentials and requests go only to Microsoft's and AWS's hosts: the Azure login
    authority must be public Azure's (login.microsoftonline.com), the management and prices URLs Azure's, over
    HTTPS; the AWS endpoint AWS's own (unset, or https://*.amazonaws.com). `test` may also use loopback
    endpoints: the test suite runs `test` against the embedded stack, and nothing sent there leaves the machine.
    `local` is not checked (the laptop's own servers)."""
    if env not in DEPLOYED:
        return
    local_ok = env == "test"
    values = {
        "azure_authority": azure_authority,
        "azure_management_url": azure_management_url,
        "azure_prices_url": azure_prices_url,
    }
    for name, value in values.items():
        if value is None or (local_ok and is_loopback(value)):
            continue
        scheme, host, port = _host(value)
        ok = (
            is_microsoft_login_host(value)
            if name == "azure_authority"
            else scheme == "https" and host == AZURE_HOSTS[name] and port in (None, "443")
        )
        if not ok:
            raise SettingsError(
                f"{ENV_VARS[name]}={value!r} is refused in SPOTLAKE_ENV={env}: it must be https://{AZURE_HOSTS[name]}"
                + (" (public Azure's login host)" if name == "azure_authority" else "")
            )
    if aws_endpoint_url is not None and not (local_ok and is_loopback(aws_endpoint_url)):
        scheme, host, _ = _host(aws_endpoint_url)
        if scheme != "https" or not host.endswith(AWS_HOST_SUFFIX):
            raise SettingsError(
                f"{ENV_VARS['aws_endpoint_url']}={aws_endpoint_url!r} is refused in SPOTLAKE_ENV={env}: leave it unset "
                f"(AWS's own endpoints) or use an https://...{AWS_HOST_SUFFIX} endpoint"
            )


def _refuse_aws_endpoint(env: str, value: str, where: str) -> None:
    """The rule of SPOTLAKE_AWS_ENDPOINT_URL for any other place boto3 takes an endpoint from; the message names
    `where` and the URL's host only (a URL may carry user info)."""
    if env not in DEPLOYED or (env == "test" and is_loopback(value)):
        return
    scheme, host, _ = _host(value)
    if scheme == "https" and host.endswith(AWS_HOST_SUFFIX):
        return
    try:
        shown = urlsplit(value if "://" in value else f"https://{value}").hostname or "no host"
    except ValueError:
        shown = "no valid host"
    raise SettingsError(
        f"{where} (host {shown}) is refused in SPOTLAKE_ENV={env}: boto3 would send the task's signed requests "
        f"there. Remove it: AWS's own endpoints are the default, and {ENV_VARS['aws_endpoint_url']} names another "
        f"https://...{AWS_HOST_SUFFIX} one"
    )


# boto3's own endpoint settings, used by every client built without an endpoint_url (production's: AWS's own):
# AWS_ENDPOINT_URL for every service, AWS_ENDPOINT_URL_<SERVICE> for one (_S3, _DYNAMODB, _SSM, _CLOUDWATCH, _ECS,
# ...), and `endpoint_url` in the shared config file (AWS_CONFIG_FILE, else ~/.aws/config), for a profile or, under a
# `services` section, for one service.
BOTO_ENDPOINT_VAR = "AWS_ENDPOINT_URL"


def shared_config_file(environ: Mapping[str, str]) -> str | None:
    """Where boto3 reads its shared config file: AWS_CONFIG_FILE, else ~/.aws/config (variables and ~ expanded as
    botocore does). None for a mapping that names neither the file nor a HOME (not the process's environment)."""
    config = environ.get("AWS_CONFIG_FILE")
    if not config:
        home = environ.get("HOME") or (os.path.expanduser("~") if environ is os.environ else None)
        if not home:
            return None
        config = os.path.join(home, ".aws", "config")
    return os.path.expanduser(os.path.expandvars(config))


def check_boto_endpoints(env: str, environ: Mapping[str, str]) -> None:
    """In `prod` and `test`, boto3's own endpoint settings obey the rule of SPOTLAKE_AWS_ENDPOINT_URL (check_endpoints):
    AWS's hosts over HTTPS, and in `test` loopback too; `local` is not checked (tests and the embedded stack point
    boto3 at moto with AWS_ENDPOINT_URL). An audit saw `prod` send requests signed with the task's credentials to a
    loopback listener named by AWS_ENDPOINT_URL, which the SPOTLAKE_* guard did not see.

    Refused rather than neutralised by setting AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true: that would make this pure
    reader change os.environ (and not a mapping it is given), protect only the clients built after it, and hide a
    misconfigured deployment instead of naming the variable to remove; a refusal stops the process before any request
    (definitions.py, every resource at run start and the ECS run launcher call load_settings)."""
    if env not in DEPLOYED:
        return
    for name in sorted(environ):
        if (name == BOTO_ENDPOINT_VAR or name.startswith(BOTO_ENDPOINT_VAR + "_")) and environ[name]:
            _refuse_aws_endpoint(env, environ[name], name)  # an empty value is unset for boto3 too
    path = shared_config_file(environ)
    if path is None or not os.path.isfile(path):
        return
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            text = lines.read()
    except OSError as exc:
        raise SettingsError(
            f"the AWS shared config file {path} cannot be read to check its endpoint_url settings "
            f"({type(exc).__name__}); in SPOTLAKE_ENV={env} fix or remove it"
        ) from None
    # every `endpoint_url`, of any profile or services section: none may lead elsewhere, whichever profile is used
    for number, line in enumerate(text.splitlines(), 1):
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "endpoint_url" and value.strip():
            _refuse_aws_endpoint(env, value.strip(), f"endpoint_url in the AWS shared config file {path}:{number}")


def check_guards(settings: Settings) -> None:
    """Every guard of the environment on a whole Settings."""
    check_write_targets(settings.env, write_bucket=settings.write_bucket, dynamodb_table=settings.dynamodb_table)
    check_endpoints(
        settings.env,
        azure_authority=settings.azure_authority,
        azure_management_url=settings.azure_management_url,
        azure_prices_url=settings.azure_prices_url,
        aws_endpoint_url=settings.aws_endpoint_url,
    )
