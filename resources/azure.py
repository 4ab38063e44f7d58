"""The Dagster resource that hands out Azure clients for one run."""

from __future__ import annotations

from typing import Any

from pydantic import PrivateAttr

from .azure_auth import MANAGEMENT_SCOPE, ServicePrincipal, get_token, load_service_principal, make_credential
from .azure_graph import ResourceGraphClient
from .azure_prices import RetailPricesClient
from .azure_sps import SpsClient
from .http import RetryingClient, RetryPolicy
from .lockdown import EnvironmentBound
from .retry import Backoff
from .settings import Settings, check_endpoints


class AzureResource(EnvironmentBound):
    """Endpoints, retry budget and credentials for the Azure APIs.

    Nothing is contacted when the resource is built: credentials are read on first use, so definitions
    load without network or secrets. Secrets come from the environment or the legacy AzureAuth table,
    never from this config (which the UI shows). Where requests and credentials go (the endpoints, the login
    authority, its CA, the credentials table), the environment and the SPS call cap come from the deployment's
    environment only (resources/lockdown.py); in `prod` and `test` the authority must be Microsoft's login host,
    checked again before any credential is built.
    """

    PROTECTED = {
        "prices_url": "SPOTLAKE_AZURE_PRICES_URL",
        "management_url": "SPOTLAKE_AZURE_MANAGEMENT_URL",
        "authority": "SPOTLAKE_AZURE_AUTHORITY",
        "ca_bundle": "SPOTLAKE_AZURE_CA_BUNDLE",
        "auth_table": "SPOTLAKE_AZURE_AUTH_TABLE",
        "aws_endpoint_url": "SPOTLAKE_AWS_ENDPOINT_URL",
        "aws_region": "SPOTLAKE_AWS_REGION",
        "env": "SPOTLAKE_ENV",
        "sps_max_calls_per_run": "SPOTLAKE_SPS_MAX_CALLS_PER_RUN",
    }

    prices_url: str
    management_url: str
    authority: str
    ca_bundle: str | None = None
    auth_table: str = "AzureAuth"
    aws_endpoint_url: str | None = None
    aws_region: str = "us-west-2"
    env: str = "local"
    sps_max_calls_per_run: int | None = None  # None: no cap (`test` has one: docs/security.md)
    max_tries: int = 6
    timeout_seconds: float = 50.0
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    price_page_concurrency: int = 8
    price_requests_per_second: float = 20.0

    _principal: ServicePrincipal | None = PrivateAttr(default=None)
    _credential: object = PrivateAttr(default=None)

    @classmethod
    def settings_values(cls, settings: Settings) -> dict[str, Any]:
        return dict(
            prices_url=settings.azure_prices_url,
            management_url=settings.azure_management_url,
            authority=settings.azure_authority,
            ca_bundle=settings.azure_ca_bundle,
            auth_table=settings.azure_auth_table,
            aws_endpoint_url=settings.aws_endpoint_url,
            aws_region=settings.aws_region,
            env=settings.env,
            sps_max_calls_per_run=settings.sps_max_calls_per_run,
        )

    def check_guards(self) -> None:
        check_endpoints(
            self.env,
            azure_authority=self.authority,
            azure_management_url=self.management_url,
            azure_prices_url=self.prices_url,
            aws_endpoint_url=self.aws_endpoint_url,
        )

    def http(self) -> RetryingClient:
        """A fresh retrying client (its retry counter then belongs to one collection)."""
        policy = RetryPolicy(
            max_tries=self.max_tries,
            timeout_seconds=self.timeout_seconds,
            backoff=Backoff(base_seconds=self.backoff_base_seconds, max_seconds=self.backoff_max_seconds),
        )
        return RetryingClient(policy=policy)

    def principal(self) -> ServicePrincipal:
        if self._principal is None:
            self.check_guards()  # where the secret is read from
            self._principal = load_service_principal(
                auth_table=self.auth_table, aws_endpoint_url=self.aws_endpoint_url, aws_region=self.aws_region
            )
        return self._principal

    def bearer_token(self) -> str:
        """A token for Resource Graph and SPS; a refused secret (wrong, expired) is an AzureCredentialsError, a failed
        source, named by the login host and Azure's error code only (never the secret or the response body)."""
        if self._credential is None:
            self.check_guards()  # where the secret is sent: never a credential for a refused authority
            self._credential = make_credential(self.principal(), authority=self.authority, ca_bundle=self.ca_bundle)
        return get_token(self._credential, MANAGEMENT_SCOPE, authority=self.authority)

    def prices_client(self, http: RetryingClient) -> RetailPricesClient:
        return RetailPricesClient(
            url=self.prices_url,
            http=http,
            concurrency=self.price_page_concurrency,
            max_requests_per_second=self.price_requests_per_second,
        )

    def graph_client(self, http: RetryingClient) -> ResourceGraphClient:
        return ResourceGraphClient(management_url=self.management_url, http=http, bearer_token=self.bearer_token)

    def sps_client(self) -> SpsClient:
        return SpsClient(
            management_url=self.management_url, bearer_token=self.bearer_token, timeout_seconds=self.timeout_seconds
        )

