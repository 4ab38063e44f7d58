"""The heartbeat AWS watches without Dagster: a CloudWatch metric put by each run that committed partitions.

If the daemon, its ECS service, the code server or Postgres stops, the schedule stops and so do the alert sensors,
which run in the daemon: nothing inside Dagster can say so. CloudWatch can: the history load puts one datapoint of
`PartitionsCommitted` (the number of partitions the run committed, docs/design.md "Continuity") after its last
commit, and an alarm (infra/modules/collector/alarms.tf) fires when the metric's sum stays below one for 30 minutes,
missing data counting as breaching. Nothing is put for a run that committed nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import PrivateAttr

from .aws import describe_error, make_client
from .lockdown import EnvironmentBound
from .settings import Settings

NAMESPACE = "SpotLake/Azure"
METRIC = "PartitionsCommitted"
DIMENSION = "Environment"


class HeartbeatError(RuntimeError):
    """PutMetricData failed (the message names the namespace, the endpoint and AWS's error, no request data)."""


class Heartbeat(EnvironmentBound):
    """Puts the `PartitionsCommitted` metric of this environment to CloudWatch (moto's server in `local`)."""

    PROTECTED = {
        "namespace": f"fixed: {NAMESPACE}, the namespace the alarm watches",
        "environment": "SPOTLAKE_ENV",
        "endpoint_url": "SPOTLAKE_AWS_ENDPOINT_URL",
        "region_name": "SPOTLAKE_AWS_REGION",
    }

    namespace: str = NAMESPACE
    environment: str = "local"  # the metric's Environment dimension: prod and test have an alarm each
    endpoint_url: str | None = None  # None: the real AWS endpoint; the local stack points this at moto
    region_name: str = "us-west-2"

    _client: Any = PrivateAttr(default=None)

    @classmethod
    def settings_values(cls, settings: Settings) -> dict[str, Any]:
        return dict(
            namespace=NAMESPACE,
            environment=settings.env,
            endpoint_url=settings.aws_endpoint_url,
            region_name=settings.aws_region,
        )

    @property
    def dimensions(self) -> list[dict[str, str]]:
        return [{"Name": DIMENSION, "Value": self.environment}]

    def beat(self, committed: int, at: datetime | None = None) -> None:
        """One datapoint: `committed` partitions became durable now (a positive number; call it only after a
        commit). Raises HeartbeatError."""
        if committed < 1:
            raise ValueError(f"a heartbeat reports committed partitions, got {committed}")
        if self._client is None:
            self._client = make_client("cloudwatch", endpoint_url=self.endpoint_url, region_name=self.region_name)
        try:
            self._client.put_metric_data(
                Namespace=self.namespace,
                MetricData=[
                    {
                        "MetricName": METRIC,
                        "Dimensions": self.dimensions,
                        "Timestamp": at or datetime.now(UTC),
                        "Value": float(committed),
                        "Unit": "Count",
                    }
                ],
            )
        except (ClientError, BotoCoreError) as exc:
            where = f" at {self.endpoint_url}" if self.endpoint_url else ""
            raise HeartbeatError(
                f"PutMetricData of {self.namespace}/{METRIC}{where} failed: {describe_error(exc)}"
            ) from exc
