"""Assembles the one Definitions object for an environment's settings."""

from __future__ import annotations

from dagster import Definitions

from resources.azure import AzureResource
from resources.clock import Clock
from resources.history_table import DynamoDBHistory
from resources.io_manager import SplitBucketParquetIOManager
from resources.s3 import S3Store
from resources.settings import Settings
from resources.slack import SlackWebhook

from .dataset.history import azure_dynamodb_history
from .dataset.outputs import azure_public_outputs
from .dataset.snapshot import azure_spot_snapshot
from .jobs import collect_job, collect_schedule, request_pool_job, request_pool_schedule
from .sensors import failed_check_alert, run_failure_alert
from .sources.eviction import azure_eviction_raw
from .sources.price import azure_price_raw
from .sources.sps import azure_sps_raw, azure_sps_request_pool

ASSETS = [
    azure_price_raw,
    azure_eviction_raw,
    azure_sps_request_pool,
    azure_sps_raw,
    azure_spot_snapshot,
    azure_dynamodb_history,
    azure_public_outputs,
]


def azure_resource(settings: Settings, **overrides: object) -> AzureResource:
    """The Azure resource of an environment; `overrides` set retry budgets and the like (tests, benchmarks)."""
    fields: dict[str, object] = dict(
        prices_url=settings.azure_prices_url,
        management_url=settings.azure_management_url,
        authority=settings.azure_authority,
        ca_bundle=settings.azure_ca_bundle,
        auth_table=settings.azure_auth_table,
        aws_endpoint_url=settings.aws_endpoint_url,
        aws_region=settings.aws_region,
    )
    return AzureResource(**{**fields, **overrides})


def history_resource(settings: Settings) -> DynamoDBHistory:
    return DynamoDBHistory(
        table_name=settings.dynamodb_table,
        endpoint_url=settings.aws_endpoint_url,
        region_name=settings.aws_region,
        env=settings.env,
    )


def build_resources(settings: Settings) -> dict[str, object]:
    """Every resource, configured from settings alone: nothing here opens a connection."""
    store = S3Store(
        write_bucket=settings.write_bucket,
        read_bucket=settings.read_bucket,
        endpoint_url=settings.aws_endpoint_url,
        region_name=settings.aws_region,
        legacy_import_bucket=settings.legacy_import_bucket,
    )
    return {
        "store": store,
        "io_manager": SplitBucketParquetIOManager(store=store),
        "azure": azure_resource(settings),
        "history": history_resource(settings),
        "clock": Clock(),
        # the legacy kept the webhook URL in SSM; SPOTLAKE_SLACK_WEBHOOK_URL wins when set
        "slack_webhook": SlackWebhook(
            ssm_parameter=None if settings.env == "local" else "error_notification_slack_webhook_url",
            ssm_endpoint_url=settings.aws_endpoint_url,
            region_name=settings.aws_region,
        ),
    }


def build_definitions(settings: Settings) -> Definitions:
    return Definitions(
        assets=ASSETS,
        jobs=[collect_job, request_pool_job],
        schedules=[collect_schedule, request_pool_schedule],
        sensors=[run_failure_alert, failed_check_alert],
        resources=build_resources(settings),
    )
