"""Assembles the one Definitions object of an environment from its settings (nothing here opens a connection)."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import AssetsDefinition, Definitions

from resources.azure import AzureResource
from resources.clock import Clock
from resources.heartbeat import Heartbeat
from resources.history_table import HistoryTable
from resources.io_manager import PreviousStateLoader, SplitBucketParquetIOManager
from resources.s3 import S3Store
from resources.settings import Settings
from resources.slack import SlackWebhook

from .dataset.archive import build_archive_asset
from .dataset.history import build_history_asset
from .dataset.outputs import build_outputs_asset
from .dataset.snapshot import build_snapshot_asset
from .freshness import build_freshness_checks, build_freshness_sensor
from .jobs import build_jobs
from .partitions import Partitions, quiet_beta_notices
from .sensors import failed_check_alert, run_failure_alert
from .sources.eviction import build_eviction_asset
from .sources.price import build_price_asset
from .sources.sps import build_sps_raw_asset
from .sources.sps_pool import build_sps_pool_asset


def build_assets(partitions: Partitions) -> list[AssetsDefinition]:
    with quiet_beta_notices():
        return [
            build_price_asset(partitions),
            build_eviction_asset(partitions),
            build_sps_pool_asset(partitions),
            build_sps_raw_asset(partitions),
            build_snapshot_asset(partitions),
            build_history_asset(partitions),
            build_outputs_asset(partitions),
            build_archive_asset(partitions),
        ]


def azure_resource(settings: Settings, **overrides: object) -> AzureResource:
    """The Azure resource of an environment; `overrides` set retry budgets and the like (tests, benchmarks), never
    an endpoint, the authority or the environment (resources/lockdown.py)."""
    return AzureResource.from_settings(settings, **overrides)


def history_resource(settings: Settings) -> HistoryTable:
    return HistoryTable.from_settings(settings)


def build_resources(
    settings: Settings, clock: Clock | None = None, azure_overrides: Mapping[str, object] | None = None
) -> dict[str, object]:
    """Every resource, configured from settings alone; `clock` pins "now" (the local run replays partitions),
    `azure_overrides` sets Azure retry budgets (benchmarks).
    Where data goes and where credentials are sent cannot be changed by a run's config: each resource refuses that,
    and compares itself with the environment's settings, when a run starts (resources/lockdown.py)."""
    store = S3Store.from_settings(settings)
    return {
        "store": store,
        "io_manager": SplitBucketParquetIOManager(store=store),
        "previous_state_loader": PreviousStateLoader(store=store),
        "azure": azure_resource(settings, **(azure_overrides or {})),
        "history": history_resource(settings),
        "clock": clock or Clock.from_settings(settings),
        # the CloudWatch metric the alarm outside Dagster watches (resources/heartbeat.py)
        "heartbeat": Heartbeat.from_settings(settings),
        # the legacy kept the webhook URL in SSM; SPOTLAKE_SLACK_WEBHOOK_URL wins when set
        "slack_webhook": SlackWebhook.from_settings(settings),
    }


def build_definitions(
    settings: Settings, clock: Clock | None = None, azure_overrides: Mapping[str, object] | None = None
) -> Definitions:
    partitions = Partitions.starting_at(settings.partition_start)
    # Production runs unattended from its first deployment: the schedules and the freshness sensor start running
    # by themselves there; elsewhere an operator starts them (`make dev` must not collect every 10 minutes).
    running = settings.env == "prod"
    freshness = build_freshness_checks()
    jobs, schedules = build_jobs(partitions, running=running, freshness_checks=freshness)
    return Definitions(
        assets=build_assets(partitions),
        asset_checks=freshness,
        jobs=jobs,
        schedules=schedules,
        sensors=[run_failure_alert, failed_check_alert, build_freshness_sensor(freshness, running=running)],
        resources=build_resources(settings, clock, azure_overrides),
    )
