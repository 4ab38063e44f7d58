"""Operations around the asset graph: run and check alerts, per-materialization resource monitoring."""

from .alerts import SlackWebhook, build_failure_sensor, failed_check_alert, format_failure, run_failure_alert
from .monitoring import measure, run_metadata

__all__ = [
    "SlackWebhook",
    "build_failure_sensor",
    "failed_check_alert",
    "format_failure",
    "measure",
    "run_metadata",
    "run_failure_alert",
]
