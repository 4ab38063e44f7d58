"""Assembles the one Definitions object of an environment from its settings (nothing here opens a connection)."""

from __future__ import annotations

from dagster import AssetsDefinition, Definitions

from resources.azure import AzureResource
from resources.clock import Clock
from resources.history_table import HistoryTable
from resources.io_manager import PreviousStateLoader, SplitBucketParquetIOManager
from resources.s3 import S3Store
from resources.settings import Settings
from resources.slack import SlackWebhook

from .dataset.history import build_history_asset
from .dataset.outputs import build_outputs_asset
from .dataset.snapshot import build_snapshot_asset
from .jobs import build_jobs
from .partitions import Partitions, quiet_beta_notices
from .sensors import failed_check_alert, run_failure_alert
from .sources.eviction import build_eviction_asset
from .sources.price import build_price_asset
from .sources.sps import build_sps_assets


def build_assets(partitions: Partitions) -> list[AssetsDefinition]:
    with quiet_beta_notices():
        return [
            build_price_asset(partitions),
            build_eviction_asset(partitions),
            *build_sps_assets(partitions),
            build_snapshot_asset(partitions),
            build_history_asset(partitions),
            build_outputs_asset(partitions),
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


def history_resource(settings: Settings) -> HistoryTable:
    return HistoryTable(
        table_name=settings.dynamodb_table,
        endpoint_url=settings.aws_endpoint_url,
        region_name=settings.aws_region,
        env=settings.env,
    )


def build_resources(settings: Settings, clock: Clock | None = None) -> dict[str, object]:
    """Every resource, configured from settings alone; `clock` pins "now" (the local run replays partitions)."""
    store = S3Store(
        env=settings.env,
        write_bucket=settings.write_bucket,
        read_bucket=settings.read_bucket,
        endpoint_url=settings.aws_endpoint_url,
        region_name=settings.aws_region,
    )
    return {
        "store": store,
        "io_manager": SplitBucketParquetIOManager(store=store),
        "previous_state_loader": PreviousStateLoader(store=store),
        "azure": azure_resource(settings),
        "history": history_resource(settings),
        "clock": clock or Clock(),
        # the legacy kept the webhook URL in SSM; SPOTLAKE_SLACK_WEBHOOK_URL wins when set
        "slack_webhook": SlackWebhook(
            ssm_parameter=None if settings.env == "local" else "error_notification_slack_webhook_url",
            ssm_endpoint_url=settings.aws_endpoint_url,
            region_name=settings.aws_region,
        ),
    }


def build_definitions(settings: Settings, clock: Clock | None = None) -> Definitions:
    partitions = Partitions.starting_at(settings.partition_start)
    jobs, schedules = build_jobs(partitions)
    return Definitions(
        assets=build_assets(partitions),
        jobs=jobs,
        schedules=schedules,
        sensors=[run_failure_alert, failed_check_alert],
        resources=build_resources(settings, clock),
    )
