"""Operations around the asset graph: run-failure alerts and per-materialization resource monitoring."""

from .alerts import SlackWebhook, build_failure_sensor, format_failure, run_failure_alert
from .monitoring import measure, monitoring_documents, monitoring_keys

__all__ = [
    "SlackWebhook",
    "build_failure_sensor",
    "format_failure",
    "measure",
    "monitoring_documents",
    "monitoring_keys",
    "run_failure_alert",
]
