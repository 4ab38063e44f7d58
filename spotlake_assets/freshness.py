"""Freshness in the graph: the merged snapshot and the public files must have been updated within a few partitions.

A run that fails says so itself (the alert sensors). What nobody says is that runs stopped: a schedule turned off,
runs queued behind something, every run ended at launch. These checks fail when the newest materialization of
`azure_spot_snapshot` or `azure_public_outputs` (which records one only when it published something) is older than
FRESHNESS_BOUND; their sensor evaluates them whenever they could have gone stale, and `failed_check_alert` posts a
failure like any failing ERROR check. They run in the daemon: when the daemon itself stops, the CloudWatch alarm on
the heartbeat (resources/heartbeat.py) speaks instead (docs/operations.md "Who is told").

Dagster's newer FreshnessPolicy is not used: its results are not asset checks, so the check alert could not post
them.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

import dagster as dg

from .core import names

# Three partitions: one lost partition (recovered by the next run) is no alarm; three in a row are.
FRESHNESS_BOUND = timedelta(minutes=30)
FRESH_ASSETS = (names.SNAPSHOT, names.PUBLIC_OUTPUTS)
SENSOR_NAME = "freshness_checks_sensor"


def build_freshness_checks(bound: timedelta = FRESHNESS_BOUND) -> list[dg.AssetChecksDefinition]:
    """ERROR checks that the freshest materialization (any partition) of each of FRESH_ASSETS is within `bound`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)  # see the module's docstring
        return list(
            dg.build_last_update_freshness_checks(
                assets=list(FRESH_ASSETS), lower_bound_delta=bound, severity=dg.AssetCheckSeverity.ERROR
            )
        )


def build_freshness_sensor(
    checks: list[dg.AssetChecksDefinition], running: bool, minimum_interval_seconds: int = 60
) -> dg.SensorDefinition:
    """The sensor that evaluates the checks when they could have gone stale (and again after a failure once the
    asset was updated); running by default where the schedule is (`prod`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return dg.build_sensor_for_freshness_checks(
            freshness_checks=checks,
            minimum_interval_seconds=minimum_interval_seconds,
            name=SENSOR_NAME,
            default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        )
