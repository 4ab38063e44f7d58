"""Azure service-principal credentials: environment variables first, else the legacy `AzureAuth` table (read only)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import boto3
from azure.core.exceptions import AzureError
from azure.identity import ClientSecretCredential

from .aws import describe_error
from .error_text import login_error_code, redact
from .log_guard import secret_in_flight
from .settings import is_microsoft_login_host

MANAGEMENT_SCOPE = "https://management.azure.com/.default"
LEGACY_AUTH_ITEM = "login_auth_az_true"
ENV_NAMES = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
SUBSCRIPTIONS_ENV = "AZURE_SUBSCRIPTIONS"


class AzureCredentialsError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServicePrincipal:
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)  # never printed
    subscriptions: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], source: str) -> ServicePrincipal:
        missing = [k for k in ("tenant_id", "client_id", "client_secret") if not data.get(k)]
        if missing:
            raise AzureCredentialsError(f"{source} lacks {', '.join(missing)}")
        subs = data.get("subscriptions") or ""
        subs_list = subs.split(",") if isinstance(subs, str) else list(subs)  # type: ignore[arg-type]
        return cls(
            tenant_id=str(data["tenant_id"]),
            client_id=str(data["client_id"]),
            client_secret=str(data["client_secret"]),
            subscriptions=tuple(s.strip() for s in subs_list if str(s).strip()),
        )


def load_service_principal(
    *, auth_table: str, aws_endpoint_url: str | None, aws_region: str, environ: Mapping[str, str] | None = None
) -> ServicePrincipal:
    """From AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET (+ AZURE_SUBSCRIPTIONS, comma-separated) when
    all are set, else from item `login_auth_az_true` of the legacy table (attribute `data`, a JSON string)."""
    environ = os.environ if environ is None else environ
    if all(environ.get(n) for n in ENV_NAMES):
        return ServicePrincipal.from_mapping(
            {
                "tenant_id": environ["AZURE_TENANT_ID"],
                "client_id": environ["AZURE_CLIENT_ID"],
                "client_secret": environ["AZURE_CLIENT_SECRET"],
                "subscriptions": environ.get(SUBSCRIPTIONS_ENV, ""),
            },
            "environment",
        )
    where = f"DynamoDB table {auth_table!r} item {LEGACY_AUTH_ITEM!r}" + (
        f" at {aws_endpoint_url}" if aws_endpoint_url else ""
    )
    client = boto3.client("dynamodb", endpoint_url=aws_endpoint_url, region_name=aws_region)
    try:
        # botocore logs whole response bodies at DEBUG: not while the secret is in one
        with secret_in_flight():
            item = client.get_item(
                TableName=auth_table, Key={"id": {"S": LEGACY_AUTH_ITEM}}, ConsistentRead=True
            ).get("Item")
    except Exception as exc:  # botocore errors carry no secret; an AccessDenied names the account: redacted
        raise AzureCredentialsError(
            f"no Azure credentials: {', '.join(ENV_NAMES)} are not all set and reading {where} failed: "
            f"{redact(describe_error(exc))}"
        ) from None
    if not item or "data" not in item:
        raise AzureCredentialsError(
            f"no Azure credentials: {', '.join(ENV_NAMES)} are not all set and {where} is missing"
        )
    try:
        data = json.loads(item["data"]["S"])
    except (KeyError, ValueError):
        raise AzureCredentialsError(f"{where}: attribute data is not a JSON string") from None
    return ServicePrincipal.from_mapping(data, where)


def make_credential(sp: ServicePrincipal, *, authority: str, ca_bundle: str | None) -> ClientSecretCredential:
    """azure-identity caches and refreshes the token; a local authority (the emulator) needs its CA file. Which
    authorities an environment may use is checked before this is called (AzureResource.check_guards)."""
    kwargs: dict[str, object] = {"authority": authority}
    if ca_bundle:
        kwargs["connection_verify"] = ca_bundle
    if not is_microsoft_login_host(authority):
        kwargs["disable_instance_discovery"] = True  # a private authority is not in Microsoft's instance list
    return ClientSecretCredential(sp.tenant_id, sp.client_id, sp.client_secret, **kwargs)


def get_token(credential: ClientSecretCredential, scope: str, *, authority: str) -> str:
    """A bearer token; a failed login raises AzureCredentialsError with the authority and Entra ID's error code
    only (azure-identity's messages name the tenant, the application and trace ids)."""
    try:
        with secret_in_flight():
            return credential.get_token(scope).token
    except AzureError as exc:
        code = login_error_code(str(exc)) or type(exc).__name__
        raise AzureCredentialsError(f"Azure login at {authority}: {code}") from None
